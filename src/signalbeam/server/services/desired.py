"""Desired state: what each device should run, versioned by a per-device generation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from signalbeam.domain.errors import NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.bundle_v1 import NAME_PATTERN
from signalbeam.server.db.models import Device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork


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
    bundle, version = bundle_of(spec)
    named = {"bundle": bundle, "version": version} if bundle else {}
    wanted = list(dict.fromkeys(device_ids))
    async with runtime.unit_of_work(actor) as uow:
        changed = await uow.devices.advance_desired(wanted, spec, bundle, version)
        missing = sorted(set(wanted) - {device_id for _, device_id, _ in changed})
        if missing:
            raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
        await uow.record_devices(
            EventType.DEVICE_DESIRED_STATE_CHANGED,
            [
                (
                    pk,
                    device_id,
                    f"{summary} (generation {generation})",
                    {"generation": generation, **named},
                )
                for pk, device_id, generation in changed
            ],
        )
        await uow.commit()
    generations = {pk: generation for pk, _, generation in changed}
    runtime.devices.evict(*generations)
    runtime.watchers.notify(generations, dict.fromkeys(generations, spec))
    return {device_id: generation for _, device_id, generation in changed}


def write_desired(
    uow: UnitOfWork, devices: Sequence[Device], spec: dict[str, Any], summary: str
) -> None:
    """Set the desired state of loaded devices inside `uow`, one new generation and event each.

    For callers that must change desired state in the same transaction as their own rows (the
    rollout engine); they call `announce_desired` once the transaction is committed.
    """
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


def announce_desired(runtime: Runtime, devices: Sequence[Device]) -> None:
    """After commit: drop cached copies of the devices and wake agents watching them."""
    runtime.devices.evict(*(device.id for device in devices))
    runtime.watchers.notify(
        {device.id: device.desired_generation for device in devices},
        {device.id: device.desired_state for device in devices},
    )
