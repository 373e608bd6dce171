"""The watch task: a held long-poll that wakes the sync loop when the desired state moves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from signalbeam.agent.backoff import Backoff
from signalbeam.agent.client import DeviceClient, Rejected, ServerUnavailable
from signalbeam.agent.clock import steady
from signalbeam.agent.wire import DesiredState

log = logging.getLogger(__name__)
# When the server has no watch endpoint, look again now and then (it may be upgraded).
UNSUPPORTED_RETRY_SECONDS = 300.0
# An "unchanged" answer sooner than this was not held: the server is not long-polling.
MIN_HELD_SECONDS = 1.0


class Watcher:
    """Holds `GET /watch` and calls `wake` on `changed`; polling carries on if this fails."""

    def __init__(
        self,
        client: DeviceClient,
        known_generation: Callable[[], int],
        wake: Callable[[], None],
        timeout: float,
        take: Callable[[DesiredState], Awaitable[None]] | None = None,
        offer: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.known_generation = known_generation
        self.wake = wake
        self.take = take
        self.offer = offer
        self.timeout = timeout
        self.online = asyncio.Event()
        self.synced = asyncio.Event()
        self.backoff = Backoff(base=1.0, cap=60.0)
        self._last_problem: str | None = None

    def sync_done(self, online: bool) -> None:
        """The sync loop finished a sync; `online` says whether it reached the server."""
        self.synced.set()
        if online:
            self.online.set()
        else:
            self.online.clear()

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            await self.online.wait()
            try:
                pause = await self._watch_once()
            except Exception:  # the watch is an optimisation; it must never stop the agent
                log.exception("watch: unexpected error; polling carries on")
                pause = self.backoff.next_delay()
            if pause:
                await asyncio.sleep(pause)

    async def _watch_once(self) -> float:
        generation = self.known_generation()
        started = steady()
        try:
            answer = await self.client.watch(generation, self.timeout)
        except (ServerUnavailable, Rejected) as err:
            return self._failed(err)
        if self._last_problem is not None:
            log.info("watch: working again; desired-state changes arrive at once")
            self._last_problem = None
        offered = answer.sessions or []
        for session_id in offered:
            if self.offer is not None:
                self.offer(session_id)
        if answer.status == "changed" and answer.generation > generation:
            desired = answer.desired
            if self.take is not None and desired is not None and desired.generation > generation:
                # Act on it now; the sync that follows only reports.
                await self.take(desired)
            return await self._changed(generation)
        if offered:
            return 0.0  # answered early because of the offer: watch again at once
        if steady() - started < min(MIN_HELD_SECONDS, self.timeout):
            return max(MIN_HELD_SECONDS, self.backoff.next_delay())
        self.backoff.reset()
        return 0.0

    async def _changed(self, generation: int) -> float:
        log.debug("watch: desired state moved past generation %d; syncing now", generation)
        self.synced.clear()
        self.wake()
        try:
            await asyncio.wait_for(self.synced.wait(), self.timeout)
        except TimeoutError:
            return self.backoff.next_delay()
        if self.known_generation() <= generation:
            # The sync did not bring the generation the watch promised: do not spin on it.
            return max(MIN_HELD_SECONDS, self.backoff.next_delay())
        self.backoff.reset()
        return 0.0

    def _failed(self, err: ServerUnavailable | Rejected) -> float:
        if isinstance(err, Rejected) and err.permanent:
            # Let the sync loop hear the refusal now; it logs it once and stops the agent.
            self.wake()
            return self.backoff.next_delay()
        unsupported = isinstance(err, Rejected) and err.status in (404, 405)
        if err.detail != self._last_problem:
            how = "server has no watch endpoint" if unsupported else "watch failed"
            log.info("%s (%s); syncing on the interval meanwhile", how, err.detail)
        self._last_problem = err.detail
        return UNSUPPORTED_RETRY_SECONDS if unsupported else self.backoff.next_delay()
