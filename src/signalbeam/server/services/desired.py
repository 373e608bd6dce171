"""Desired state: what each device should run, versioned by a per-device generation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from signalbeam.domain.errors import NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.bundle_v1 import NAME_PATTERN
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor


def bundle_of(spec: dict[str, Any]) -> tuple[str | None, str | None]:
    """The bundle name and version a desired-state document names, if it is a bundle document."""
    bundle = spec.get("bundle") if spec.get("kind") == "bundle" else None
    if not isinstance(bundle, dict):
        return None, None
    name, version = bundle.get("name"), bundle.get("version")
    # The raw endpoint takes any document; only a well-formed reference fills the columns.
    if isinstance(name, str) and isinstance(version, str) and re.fullmatch(NAME_PATTERN, name):
        return name, version[:200]
    return None, None


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
        bundle, version = bundle_of(spec)
        named = {"bundle": bundle, "version": version} if bundle else {}
        for device in devices:
            device.desired_generation += 1
            device.desired_state = spec
            device.desired_bundle, device.desired_version = bundle, version
            uow.record(
                EventType.DEVICE_DESIRED_STATE_CHANGED,
                f"{summary} (generation {device.desired_generation})",
                device=device,
                data={"generation": device.desired_generation, **named},
            )
        await uow.commit()
    runtime.devices.evict(*(device.id for device in devices))
    runtime.watchers.notify({device.id: device.desired_generation for device in devices})
    return {device.device_id: device.desired_generation for device in devices}
