"""The presence sweeper: marks silent devices offline without waiting for a request."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from signalbeam.domain.model import EventType, Presence
from signalbeam.server.db.models import Device, Event
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import SYSTEM_ACTOR, device_event, event_payload
from signalbeam.server.workers.ingest import Ingestor

log = logging.getLogger(__name__)


async def sweep(runtime: Runtime, ingestor: Ingestor, now: datetime | None = None) -> int:
    """Mark every online device silent for longer than the offline threshold; returns how many."""
    now = now or datetime.now(UTC)
    cutoff = now - runtime.settings.offline_after
    async with ingestor.gate.exclusive(), runtime.sessions() as session:
        stale = (
            await session.execute(
                select(Device.id, Device.tenant_id, Device.device_id, Device.last_seen_at).where(
                    Device.presence == Presence.ONLINE.value, Device.last_seen_at < cutoff
                )
            )
        ).all()
        if not stale:
            return 0
        await session.execute(
            update(Device)
            .where(Device.id.in_([row.id for row in stale]))
            .values(presence=Presence.OFFLINE.value)
        )
        events = [
            _offline_event(row.id, row.tenant_id, row.device_id, row.last_seen_at, now)
            for row in stale
        ]
        session.add_all(events)
        await session.commit()
    for event in events:
        runtime.bus.publish(event.tenant_id, event_payload(event))
    return len(events)


def _offline_event(
    pk: int, tenant_id: int, device_id: str, last_seen: datetime, now: datetime
) -> Event:
    silent = int((now - last_seen).total_seconds())
    return device_event(
        tenant_id,
        pk,
        device_id,
        EventType.DEVICE_OFFLINE.value,
        SYSTEM_ACTOR,
        f"device is offline: no sync for {silent}s",
        {"last_seen_at": last_seen.isoformat()},
        at=now,
    )


async def run_sweeper(runtime: Runtime, ingestor: Ingestor, every: timedelta) -> None:
    """Sweep forever at a fixed period; a failed sweep is logged and retried next period.

    The first sweep waits one offline threshold: no device could sync while this server was
    down, so silence from before it started is the server's, not the device's. Swept at once,
    every device would go offline after a restart, and each one soaking in a rollout would
    fail it ("went offline during the soak") and roll the rollout back.
    """
    await asyncio.sleep(runtime.settings.offline_after.total_seconds())
    while True:
        try:
            await sweep(runtime, ingestor)
        except Exception:
            log.exception("presence sweep failed; retrying in %ss", every.total_seconds())
        await asyncio.sleep(every.total_seconds())
