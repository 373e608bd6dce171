"""One app's metrics: its registry, the instruments updated in-process and the scrape-time reads."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signalbeam.server.observability.collectors import FleetCollector, IngestCollector
from signalbeam.server.observability.exposition import exposition
from signalbeam.server.observability.meters import Meters
from signalbeam.server.workers.ingest import Ingestor


class Metrics:
    """What `GET /metrics` serves."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], ingestor: Ingestor, device_limit: int
    ) -> None:
        self.meters = Meters()
        self.fleet = FleetCollector(sessions, device_limit)
        self.meters.registry.register(self.fleet)
        self.meters.registry.register(IngestCollector(ingestor))
        ingestor.meter = self.meters.batch

    async def scrape(self, tenant_id: int | None) -> bytes:
        """The exposition text: every tenant's series (None) or one tenant's and the server's."""
        await self.fleet.refresh()
        return exposition(self.meters.registry, tenant_id)
