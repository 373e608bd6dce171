"""Telemetry a device queued while it could not reach us: samples and agent events, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from signalbeam.domain.model import EventType
from signalbeam.protocol.device_v1 import TelemetryAck, TelemetryBatch
from signalbeam.server.db.models import Device, Event
from signalbeam.server.repositories.metrics import insert_samples
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import device_event, event_payload
from signalbeam.server.services.device_cache import DevicePrincipal
from signalbeam.server.workers.ingest import sample_row


async def store(
    runtime: Runtime, principal: DevicePrincipal, batch: TelemetryBatch
) -> TelemetryAck:
    """Store what is new in the batch (by sequence number) and say how far we got."""
    now = datetime.now(UTC)
    async with runtime.sessions() as session:
        # FOR UPDATE serialises two batches of one device on PostgreSQL; SQLite has one writer.
        query = select(Device).where(Device.id == principal.pk).with_for_update()
        device = (await session.scalars(query)).one()
        samples = [s for s in batch.samples if s.seq > device.telemetry_sample_seq]
        rows = [
            sample_row(device.tenant_id, device.id, s.heartbeat.sampled_at or now, s.heartbeat)
            for s in samples
        ]
        await insert_samples(session, rows)
        events = [
            _agent_event(
                device, e.type, e.message, {**e.data, "occurred_at": e.occurred_at.isoformat()}, now
            )
            for e in batch.events
            if e.seq > device.telemetry_event_seq
        ]
        if batch.dropped_samples:
            events.append(_dropped_event(device, batch.dropped_samples, now))
        session.add_all(events)
        device.telemetry_sample_seq = max(
            [device.telemetry_sample_seq, *(s.seq for s in batch.samples)]
        )
        device.telemetry_event_seq = max(
            [device.telemetry_event_seq, *(e.seq for e in batch.events)]
        )
        ack = TelemetryAck(
            samples_through=device.telemetry_sample_seq, events_through=device.telemetry_event_seq
        )
        await session.commit()
    for event in events:
        runtime.bus.publish(event.tenant_id, event_payload(event))
    return ack


def _agent_event(
    device: Device, type_: str, message: str, data: dict[str, Any], now: datetime
) -> Event:
    actor = f"device:{device.device_id}"
    return device_event(
        device.tenant_id, device.id, device.device_id, type_, actor, message, data, now
    )


def _dropped_event(device: Device, count: int, now: datetime) -> Event:
    return _agent_event(
        device,
        EventType.DEVICE_SAMPLES_DROPPED.value,
        f"agent dropped {count} metric samples while offline (its outbox was full)",
        {"dropped": count},
        now,
    )
