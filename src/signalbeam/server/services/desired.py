"""Desired state: what each device should run, versioned by a per-device generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from signalbeam.domain.errors import NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor


async def set_desired(
    runtime: Runtime, actor: Actor, device_ids: Sequence[str], spec: dict[str, Any], summary: str
) -> dict[str, int]:
    """Give devices a new desired state (new generation each) and wake their watchers.

    Returns each device's new generation. Bundles and rollouts call this; `summary` is the
    human line for the activity log, e.g. "desired state: warehouse-monitor@1.2.0".
    """
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        devices = await uow.devices.get_many(device_ids)
        missing = sorted(set(device_ids) - {d.device_id for d in devices})
        if missing:
            raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
        for device in devices:
            device.desired_generation += 1
            device.desired_state = spec
            uow.record(
                EventType.DEVICE_DESIRED_STATE_CHANGED,
                f"{summary} (generation {device.desired_generation})",
                device=device,
                data={"generation": device.desired_generation},
            )
        await uow.commit()
    runtime.devices.evict(*(device.id for device in devices))
    runtime.watchers.notify({device.id: device.desired_generation for device in devices})
    return {device.device_id: device.desired_generation for device in devices}
