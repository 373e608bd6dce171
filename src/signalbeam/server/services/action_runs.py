"""Device actions that outlive the operator's connection.

Once a device is asked to restart or reboot it acts, whether or not anybody still reads the
progress. So the asking runs in a task the control plane owns, not in the request: an
operator who presses Ctrl-C, or whose connection drops, only stops reading, and every device
asked still gets its answer recorded as an event. Results wait for their reader in a queue
sized to the action's devices (each gives exactly one), and at most `MAX_RUNS` actions run
at once in a process, so what a run holds stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from signalbeam.domain.errors import Conflict
from signalbeam.server.services.action_results import ActionResult

log = logging.getLogger(__name__)

# Bulk actions in flight at once in one server process; each asks at most 32 devices at a time.
MAX_RUNS = 64
# At shutdown, how long runs get to record the answers they have (sessions end first).
CLOSE_SECONDS = 5.0


@dataclass(frozen=True)
class _End:
    """The run is over; `error` when it stopped on a failure of its own."""

    error: BaseException | None = None


Item = ActionResult | _End


class ActionRuns:
    """The device actions under way in this process, each in its own task."""

    def __init__(self, limit: int = MAX_RUNS) -> None:
        self._limit = limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def running(self) -> int:
        """How many actions are still asking devices or recording their answers."""
        return len(self._tasks)

    def start(
        self, results: AsyncIterator[ActionResult], devices: int
    ) -> AsyncGenerator[ActionResult, None]:
        """Carry `results` through to the end in the background; each result for the reader.

        `devices` is how many results there will be. The reader may stop at any time.
        """
        if self._closing:
            raise Conflict(
                "the control plane is shutting down; run the action again once it is back"
            )
        if len(self._tasks) >= self._limit:
            raise Conflict(
                f"{self._limit} device actions are already under way on this server; "
                "try again once one has finished (signalbeam events watch shows them end)"
            )
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=devices + 1)
        task = asyncio.create_task(_carry(results, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _read(queue)

    async def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """Server shutdown: refuse new runs, let those under way finish within `seconds`."""
        self._closing = True
        if not self._tasks:
            return
        _done, late = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _carry(results: AsyncIterator[ActionResult], queue: asyncio.Queue[Item]) -> None:
    end = _End()
    try:
        async for result in results:
            queue.put_nowait(result)
    except Exception as err:  # a database failure, say: the reader hears it, if one is left
        log.exception("a device action stopped early")
        end = _End(err)
    finally:
        queue.put_nowait(end)


async def _read(queue: asyncio.Queue[Item]) -> AsyncGenerator[ActionResult, None]:
    while not isinstance(item := await queue.get(), _End):
        yield item
    if item.error is not None:
        raise item.error
