"""The fleet's state as a few aggregate queries: devices, incidents, rollouts, deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.domain.alerts import IncidentState
from signalbeam.domain.model import Presence
from signalbeam.server.db.models import Delivery, Device, Incident, Rollout, Tenant

Row = tuple[Any, ...]


@dataclass(frozen=True)
class DeviceReading:
    """One online device's latest cpu, memory and disk percentages."""

    tenant_id: int
    device_id: str
    cpu: float | None
    memory: float | None
    disk: float | None


@dataclass(frozen=True)
class FleetSnapshot:
    """Counts by tenant and state, each row ending in its count."""

    tenants: dict[int, str] = field(default_factory=dict)
    presence: list[Row] = field(default_factory=list)  # tenant, presence, n
    status: list[Row] = field(default_factory=list)  # tenant, reported status, n
    versions: list[Row] = field(default_factory=list)  # tenant, bundle, version, n
    incidents: list[Row] = field(default_factory=list)  # tenant, state, severity, n
    rollouts: list[Row] = field(default_factory=list)  # tenant, status, n
    deliveries: list[Row] = field(default_factory=list)  # tenant, state, n
    readings: list[DeviceReading] = field(default_factory=list)
    online: int = 0  # devices online, of which `readings` holds at most the configured limit


def _enrolled() -> Any:
    return Device.presence != Presence.DECOMMISSIONED.value


async def _rows(session: AsyncSession, query: Select[*tuple[Any, ...]]) -> list[Row]:
    return [tuple(row) for row in (await session.execute(query)).all()]


def _reading(tenant_id: int, device_id: str, metrics: dict[str, Any] | None) -> DeviceReading:
    values = metrics or {}
    return DeviceReading(
        tenant_id,
        device_id,
        values.get("cpu_percent"),
        values.get("memory_percent"),
        values.get("disk_percent"),
    )


async def read_snapshot(session: AsyncSession, device_limit: int) -> FleetSnapshot:
    """Read the fleet's counts (and up to `device_limit` online devices' metrics)."""
    count = func.count()
    tenants = {tid: slug for tid, slug in await _rows(session, select(Tenant.id, Tenant.slug))}
    presence = await _rows(
        session,
        select(Device.tenant_id, Device.presence, count)
        .where(_enrolled())
        .group_by(Device.tenant_id, Device.presence),
    )
    status = await _rows(
        session,
        select(Device.tenant_id, Device.reported_status, count)
        .where(_enrolled(), Device.reported_status.is_not(None))
        .group_by(Device.tenant_id, Device.reported_status),
    )
    versions = await _rows(
        session,
        select(Device.tenant_id, Device.reported_bundle, Device.reported_version, count)
        .where(_enrolled(), Device.reported_bundle.is_not(None))
        .group_by(Device.tenant_id, Device.reported_bundle, Device.reported_version),
    )
    incidents = await _rows(
        session,
        select(Incident.tenant_id, Incident.state, Incident.severity, count)
        .where(Incident.state != IncidentState.RESOLVED.value)
        .group_by(Incident.tenant_id, Incident.state, Incident.severity),
    )
    rollouts = await _rows(
        session,
        select(Rollout.tenant_id, Rollout.status, count).group_by(
            Rollout.tenant_id, Rollout.status
        ),
    )
    deliveries = await _rows(
        session,
        select(Delivery.tenant_id, Delivery.state, count).group_by(
            Delivery.tenant_id, Delivery.state
        ),
    )
    readings: list[DeviceReading] = []
    if device_limit > 0:
        found = await _rows(
            session,
            select(Device.tenant_id, Device.device_id, Device.metrics)
            .where(Device.presence == Presence.ONLINE.value)
            .order_by(Device.id)
            .limit(device_limit),
        )
        readings = [_reading(*row) for row in found]
    online = sum(n for _, state, n in presence if state == Presence.ONLINE.value)
    return FleetSnapshot(
        tenants, presence, status, versions, incidents, rollouts, deliveries, readings, online
    )
