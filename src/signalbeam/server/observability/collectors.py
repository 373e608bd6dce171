"""Collectors read at scrape time: the fleet's state (cached briefly) and the ingest queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signalbeam.server.observability.device_families import reading_families
from signalbeam.server.observability.fleet_families import fleet_families
from signalbeam.server.observability.fleet_snapshot import FleetSnapshot, read_snapshot
from signalbeam.server.workers.ingest import Ingestor

log = logging.getLogger(__name__)
# Scrapes within this many seconds share one read of the database: a Prometheus scraping
# every 15 s costs one round of aggregate queries, and so do several scraping at once.
FLEET_CACHE_SECONDS = 5.0


class FleetCollector(Collector):
    """The fleet's state gauges from the last `refresh`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], device_limit: int) -> None:
        self._sessions = sessions
        self.device_limit = device_limit
        self._snapshot = FleetSnapshot()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self._warned_cap = False

    async def refresh(self) -> None:
        """Read the database again unless the last read is younger than the cache time."""
        async with self._lock:
            if self._read_at is not None and time.monotonic() - self._read_at < FLEET_CACHE_SECONDS:
                return
            async with self._sessions() as session:
                self._snapshot = await read_snapshot(session, self.device_limit)
            self._read_at = time.monotonic()
        self._note_cap()

    def _note_cap(self) -> None:
        if self.device_limit and self._snapshot.online > self.device_limit and not self._warned_cap:
            self._warned_cap = True
            log.warning(
                "metrics: %d devices online, per-device readings exported for the first %d only"
                " (metrics_device_limit; see signalbeam_device_metrics_omitted)",
                self._snapshot.online,
                self.device_limit,
            )

    def collect(self) -> Iterator[Metric]:
        yield from fleet_families(self._snapshot)
        if self.device_limit:
            yield from reading_families(self._snapshot, self.device_limit)


class IngestCollector(Collector):
    """The ingest queue's depth and committed batches, read from the ingestor as it is."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "signalbeam_ingest_queue_depth",
            "Syncs queued or being committed right now.",
            value=self._ingestor.pending,
        )
        yield CounterMetricFamily(
            "signalbeam_ingest_batches",
            "Ingest transactions committed since the server started.",
            value=self._ingestor.batches,
        )
