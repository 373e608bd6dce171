"""Draining devices: cordon them, then make "run nothing" their desired state.

Stopping the units on the device alone would not last: the agent keeps converging on its
desired bundle and would start them again. So a drain changes what the control plane wants,
a `drained` document, and the agent stops every unit it manages when it gets it. The bundle
version the device had stays in its activity (the desired-state and drain events), so
`signalbeam uncordon` then `signalbeam rollback` brings that version back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.model import DesiredKind, EventType, Presence
from signalbeam.server.db.models import Device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.action_results import ActionResult
from signalbeam.server.services.bundles import Target
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import Pending, announce_desired, write_desired
from signalbeam.server.services.rollout_targets import checked_target

BRING_BACK = "bring it back with `signalbeam uncordon` then `signalbeam rollback`"


def is_drained(device: Device) -> bool:
    """Whether the device's desired state is the drained document already."""
    return device.desired_state.get("kind") == DesiredKind.DRAINED.value


async def drain(runtime: Runtime, actor: Actor, target: Target, plan: bool) -> list[ActionResult]:
    """Cordon every device of the target and stop its units (with `plan`, only say so)."""
    async with runtime.unit_of_work(actor) as uow:
        device_ids = await checked_target(uow, target)
        found = {d.device_id: d for d in await uow.devices.get_many(device_ids)}
        devices = [found[device_id] for device_id in device_ids]
        todo = [d for d in devices if not (is_drained(d) and d.cordoned_at is not None)]
        results = [_result(d, plan) for d in todo]
        if not plan and todo:
            pending = await _drain(uow, actor, todo)
            await uow.commit()
            announce_desired(runtime, pending)
    acting = {r.device_id: r for r in results}
    unchanged = "already drained (cordoned, nothing to run)"
    return [acting.get(d, ActionResult(d, "unchanged", unchanged)) for d in device_ids]


async def _drain(uow: UnitOfWork, actor: Actor, devices: Sequence[Device]) -> Pending:
    """Cordon, write the drained document, record the drain; what to announce after commit."""
    # Read first: writing the desired state updates these very rows (and objects).
    drained = [
        (d.id, d.device_id, f"{d.device_id} drained by {actor.name}{_ran(d)}", _data(d))
        for d in devices
    ]
    groups = _by_version(d for d in devices if not is_drained(d))
    uncordoned = [d.device_id for d in devices if d.cordoned_at is None]
    cordoned = await uow.devices.set_cordoned(uncordoned, datetime.now(UTC), str(actor))
    if cordoned:
        entries: list[tuple[int, str, str, dict[str, Any]]] = [
            (pk, d, f"{d} cordoned by {actor.name} (drain)", {}) for pk, d in cordoned
        ]
        await uow.record_devices(EventType.DEVICE_CORDONED, entries)
    pending = Pending()
    for had, group in groups.items():
        spec: dict[str, Any] = {"kind": DesiredKind.DRAINED.value, "drained_from": had}
        summary = f"desired state: nothing (drained; it had {had or 'nothing assigned'})"
        await write_desired(uow, group, spec, summary, pending)
    await uow.record_devices(EventType.DEVICE_DRAINED, drained)
    return pending


def _by_version(devices: Iterable[Device]) -> dict[str | None, list[str]]:
    """Device ids by the bundle@version they had (the drained document names it)."""
    groups: dict[str | None, list[str]] = defaultdict(list)
    for device in devices:
        groups[_had(device)].append(device.device_id)
    return groups


def _had(device: Device) -> str | None:
    if device.desired_bundle is None:
        return None
    return f"{device.desired_bundle}@{device.desired_version}"


def _ran(device: Device) -> str:
    had = _had(device)
    return f" (it had {had})" if had else ""


def _data(device: Device) -> dict[str, Any]:
    # The version a later rollback brings back; the desired-state events say it too.
    return {"bundle": device.desired_bundle, "version": device.desired_version}


def _result(device: Device, plan: bool) -> ActionResult:
    had = _had(device)
    units = f"{had}'s units" if had else "its units"
    if plan:
        return ActionResult(device.device_id, "planned", f"cordon, then stop {units}")
    if device.presence != Presence.ONLINE.value:
        detail = f"cordoned; {units} stop when it is back online; {BRING_BACK}"
    else:
        detail = f"cordoned; stopping {units}; {BRING_BACK}"
    return ActionResult(device.device_id, "pending", detail)
