"""A device's effective config with where each value came from, and how far groups applied it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from signalbeam.domain.config import (
    DeviceConfigStatus,
    EffectiveItem,
    config_report_status,
    config_status,
    effective,
)
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config_delivery import load_layers, protocol_layer
from signalbeam.server.services.context import Actor
from signalbeam.server.services.devices import DeviceFilter, find_device, matching_ids


@dataclass(frozen=True)
class DeviceConfig:
    """What `GET /devices/{id}/config` shows (secret values never among them)."""

    device_id: str
    digest: str | None
    items: list[EffectiveItem]
    status: DeviceConfigStatus


async def device_config(runtime: Runtime, actor: Actor, device_id: str) -> DeviceConfig:
    """The device's effective config now, and whether it applied what it should have."""
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        layers = await load_layers(uow, [device_id])
        rows = layers.of(device.id, device.device_id, device.labels or {})
        items, digest = effective(protocol_layer(row) for row in rows)
        status = config_status(device.desired_state, device.reported_state)
    return DeviceConfig(device.device_id, digest, items, status)


async def group_status(runtime: Runtime, actor: Actor, group: str) -> dict[str, int]:
    """How many of the group's devices have applied their config, wait for it, failed, or
    have none."""
    async with runtime.unit_of_work(actor) as uow:
        ids = await matching_ids(uow, DeviceFilter(group=group))
        found = await uow.config.statuses(ids)
    counts = Counter(config_report_status(wanted, report).state for wanted, report in found)
    return {state: counts.get(state, 0) for state in ("applied", "pending", "failed", "none")}
