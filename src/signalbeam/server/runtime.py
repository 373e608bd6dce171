"""Everything a running control plane shares: settings, database, secrets, event bus, workers."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signalbeam.server.artifacts.filesystem import FilesystemStore
from signalbeam.server.artifacts.store import ArtifactStore
from signalbeam.server.db.session import create_engine, create_session_factory
from signalbeam.server.observability.metrics import Metrics
from signalbeam.server.secrets_box import SecretsBox
from signalbeam.server.secrets_box import load_or_create as load_secrets_box
from signalbeam.server.security import TokenHasher, load_or_create_key
from signalbeam.server.services.action_runs import ActionRuns
from signalbeam.server.services.bus import EventBus, EventPayload
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.credential_lookups import CredentialLookups
from signalbeam.server.services.device_cache import DeviceCache
from signalbeam.server.services.session_broker import SessionBroker
from signalbeam.server.services.watch import DesiredStateWatchers
from signalbeam.server.settings import ServerSettings
from signalbeam.server.workers.ingest import Ingestor


class Doorbell:
    """Wakes a polling worker early; it still polls, for work another replica queued."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> None:
        """Until rung (or already rung since the last wait), or `timeout` seconds.

        `asyncio.timeout`, not `wait_for`: on Python 3.11, `wait_for` swallows a cancellation
        that arrives as the bell rings, and the worker then never stopped (server shutdown
        hung until its lifespan timed out, one run in a few).
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._rung.wait()
        self._rung.clear()


class RingingBus(EventBus):
    """The event bus, also ringing the delivery worker for every event committed here: webhooks
    and the notices queued with incident changes go out at once, not at its next poll."""

    def __init__(self, doorbell: Doorbell) -> None:
        super().__init__()
        self._doorbell = doorbell

    def publish(self, tenant_id: int, payload: EventPayload) -> None:
        super().publish(tenant_id, payload)
        self._doorbell.ring()


@dataclass
class Runtime:
    """The shared state handed to routes and workers."""

    settings: ServerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hasher: TokenHasher
    bus: EventBus
    ingestor: Ingestor
    watchers: DesiredStateWatchers
    devices: DeviceCache
    credential_lookups: CredentialLookups
    artifacts: ArtifactStore
    broker: SessionBroker
    metrics: Metrics
    secrets: SecretsBox
    action_runs: ActionRuns = field(default_factory=ActionRuns)
    deliveries_due: Doorbell = field(default_factory=Doorbell)

    def begin_shutdown(self) -> None:
        """End live event streams, sessions and held long polls so the process can stop."""
        self.bus.close()
        self.broker.close_all()
        self.watchers.wake_all()

    def unit_of_work(self, actor: Actor) -> UnitOfWork:
        """A transaction for `actor`, confined to their tenant."""
        return UnitOfWork(self.sessions, self.bus, actor, self.secrets)


def build_runtime(settings: ServerSettings) -> Runtime:
    """Wire the database, secret key, bus and ingestor for these settings (no I/O yet but the key)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = (
        settings.secret_key.encode()
        if settings.secret_key
        else load_or_create_key(settings.data_dir / "secret.key")
    )
    secrets_box = load_secrets_box(settings.resolved_secrets_key_file)
    engine = create_engine(settings.resolved_database_url)
    sessions = create_session_factory(engine)
    deliveries_due = Doorbell()
    bus = RingingBus(deliveries_due)
    watchers = DesiredStateWatchers()
    ingestor = Ingestor(sessions, bus, settings.ingest_max_batch, settings.ingest_writer_count)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        hasher=TokenHasher(key),
        bus=bus,
        ingestor=ingestor,
        watchers=watchers,
        devices=DeviceCache(ttl_seconds=settings.device_cache_seconds),
        credential_lookups=CredentialLookups(sessions, secrets_box),
        artifacts=FilesystemStore(settings.data_dir / "artifacts"),
        broker=SessionBroker(watchers),
        metrics=Metrics(sessions, ingestor, settings.metrics_device_limit),
        secrets=secrets_box,
        deliveries_due=deliveries_due,
    )
