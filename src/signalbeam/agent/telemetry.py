"""Delivering the outbox: batches in order, acknowledged rows deleted, bad items isolated."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from signalbeam.agent.client import DeviceClient, Rejected, ServerUnavailable
from signalbeam.agent.outbox import Outbox
from signalbeam.agent.wire import TelemetryBatch

log = logging.getLogger(__name__)
# One flush never sends more than this many batches, so a server that acknowledges
# nothing cannot keep the agent busy forever.
MAX_BATCHES_PER_FLUSH = 1000


@dataclass
class FlushResult:
    """What one flush delivered, and why it stopped early if it did."""

    samples: int = 0
    events: int = 0
    error: str | None = None


class Flusher:
    """Sends the outbox to the server after each successful sync."""

    def __init__(self, client: DeviceClient, outbox: Outbox, batch_size: int = 500) -> None:
        self.client = client
        self.outbox = outbox
        self.batch_size = batch_size
        self._limit = batch_size
        self._last_error: str | None = None

    async def flush(self) -> FlushResult:
        """Deliver everything queued; `Rejected(permanent=True)` propagates to the caller."""
        result = await self._flush()
        if result.error and result.error != self._last_error:
            log.warning("could not deliver the outbox yet: %s", result.error)
        self._last_error = result.error
        return result

    async def _flush(self) -> FlushResult:
        result = FlushResult()
        for _ in range(MAX_BATCHES_PER_FLUSH):
            batch = await asyncio.to_thread(self.outbox.batch, self._limit)
            if batch is None:
                self._limit = self.batch_size
                return result
            try:
                ack = await self.client.telemetry(batch)
            except ServerUnavailable as err:
                result.error = err.detail
                return result
            except Rejected as err:
                if err.permanent:
                    raise
                if await self._refused(batch, err):
                    continue
                result.error = err.detail
                return result
            deleted = await asyncio.to_thread(self.outbox.acknowledge, batch, ack)
            result.samples += len(batch.samples)
            result.events += len(batch.events)
            if deleted is None:
                # The outbox could not forget the batch (a full disk): the next flush sends it
                # again, so stop here rather than send it over and over now.
                result.error = f"the outbox {self.outbox.path} is read-only or full"
                return result
            if deleted == 0 and not batch.dropped_samples:
                result.error = "the server acknowledged nothing of the last batch"
                return result
        return result

    async def _refused(self, batch: TelemetryBatch, err: Rejected) -> bool:
        """Handle a 4xx for a batch; True when flushing should go on."""
        if err.status in (404, 405):
            return False  # an older server without this endpoint: keep everything queued
        size = len(batch.samples) + len(batch.events)
        if size == 0:
            return False
        if size > 1:
            log.warning(
                "the server refused a batch of %d outbox items (%s); sending them one at a "
                "time to find the one it objects to",
                size,
                err.detail,
            )
            self._limit = 1
            return True
        await asyncio.to_thread(self.outbox.discard, batch)
        log.error(
            "the server refused an outbox item for good (%s); dropped it so the rest can go",
            err.detail,
        )
        self._limit = self.batch_size
        return True
