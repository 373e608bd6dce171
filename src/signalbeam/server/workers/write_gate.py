"""A shared/exclusive gate between the ingest writers and the work that must not interleave.

Ingest batches run side by side (shared); the presence sweeper, which decides "offline"
from rows the batches are rewriting, runs alone (exclusive). asyncio has no such lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class WriteGate:
    """Many shared holders or one exclusive holder; a waiting exclusive holder goes next.

    Exclusive waiters block new shared holders, so a steady stream of batches cannot starve
    the sweeper: it waits only for the batches already writing.
    """

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the gate beside other shared holders."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._exclusive and not self._exclusive_waiting
            )
            self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the gate alone, once every shared holder has left."""
        async with self._changed:
            self._exclusive_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._exclusive_waiting -= 1
                # A cancelled waiter no longer holds shared holders back.
                self._changed.notify_all()
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()
