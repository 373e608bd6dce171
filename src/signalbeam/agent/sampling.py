"""Sampling on the interval while a request hangs: a black-holed link must not thin the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def meanwhile(
    call: Coroutine[Any, Any, T], every: float, sample: Callable[[], Awaitable[None]]
) -> T:
    """Await `call`; each `every` seconds it is still running, await `sample()` too.

    A sync to an unreachable server can take up to the request timeout (30 s by default, twice
    the default interval) before it fails. Without this, no sample would be taken in that time,
    so every outage would leave a hole in the device's history that the outbox cannot fill.
    """
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _pending = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            await sample()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
