"""Device actions: one-shot operations over devices, a group or a selector, planned first.

Rollback gives each device the bundle version it was given before its current one.

Cordon and uncordon change only what the control plane will do next (new rollouts and
assignments leave a cordoned device out); they never touch what the device runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from signalbeam.domain.errors import DomainError, InvalidInput
from signalbeam.domain.model import EventType, Role
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.bundles import Target, assign
from signalbeam.server.services.context import Actor
from signalbeam.server.services.device_rollback import previous_version
from signalbeam.server.services.rollout_targets import checked_target

CORDON, UNCORDON, ROLLBACK = "cordon", "uncordon", "rollback"
ACTIONS = (CORDON, UNCORDON, ROLLBACK)


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, planned, would do) on one device."""

    device_id: str
    status: Literal["planned", "done", "unchanged", "failed"]
    detail: str


async def run(
    runtime: Runtime, actor: Actor, action: str, target: Target, *, plan: bool = False
) -> list[ActionResult]:
    """Carry out `action` on every device of the target (or, with `plan`, only say what)."""
    actor.require(Role.OPERATOR)
    if action not in ACTIONS:
        raise InvalidInput(
            f"unknown action {action!r}; actions are {', '.join(ACTIONS)}", field="action"
        )
    target.kind()
    if action == ROLLBACK:
        return await _roll_back(runtime, actor, target, plan)
    async with runtime.unit_of_work(actor) as uow:
        device_ids = await checked_target(uow, target)
        cordoned = await uow.devices.cordoned_among(device_ids)
        wanted = action == CORDON
        todo = [d for d in device_ids if (d in cordoned) != wanted]
        if plan:
            return _results(device_ids, todo, "planned", action)
        at = datetime.now(UTC) if wanted else None
        changed = await uow.devices.set_cordoned(todo, at, str(actor) if wanted else None)
        if changed:
            entries = [_entry(actor, action, *row) for row in changed]
            await uow.record_devices(_event(action), entries)
        await uow.commit()
    return _results(device_ids, [device_id for _pk, device_id in changed], "done", action)


def _event(action: str) -> EventType:
    return EventType.DEVICE_CORDONED if action == CORDON else EventType.DEVICE_UNCORDONED


def _entry(
    actor: Actor, action: str, pk: int, device_id: str
) -> tuple[int, str, str, dict[str, object]]:
    what = "cordoned" if action == CORDON else "uncordoned"
    return pk, device_id, f"{device_id} {what} by {actor.name}", {}


def _results(
    device_ids: list[str], acted: list[str], status: Literal["planned", "done"], action: str
) -> list[ActionResult]:
    acting = set(acted)
    already = "already cordoned" if action == CORDON else "not cordoned"
    return [
        ActionResult(d, status, f"{action}ed" if status == "done" else action)
        if d in acting
        else ActionResult(d, "unchanged", already)
        for d in device_ids
    ]


async def _roll_back(
    runtime: Runtime, actor: Actor, target: Target, plan: bool
) -> list[ActionResult]:
    async with runtime.unit_of_work(actor) as uow:
        device_ids = await checked_target(uow, target)
        devices = await uow.devices.get_many(device_ids)
        earlier = {d.device_id: await previous_version(uow, d) for d in devices}
        cordoned = await uow.devices.cordoned_among(device_ids)
    results = []
    for device_id in device_ids:
        found = earlier.get(device_id)
        if found is None:
            results.append(ActionResult(device_id, "unchanged", "no earlier bundle version"))
        elif device_id in cordoned:
            results.append(ActionResult(device_id, "unchanged", "cordoned; uncordon it first"))
        elif plan:
            results.append(ActionResult(device_id, "planned", f"back to {found[0]}@{found[1]}"))
        else:
            results.append(await _assign_back(runtime, actor, device_id, *found))
    return results


async def _assign_back(
    runtime: Runtime, actor: Actor, device_id: str, bundle: str, version: str
) -> ActionResult:
    try:
        await assign(runtime, actor, bundle, version, Target(devices=[device_id]))
    except DomainError as err:
        return ActionResult(device_id, "failed", err.detail)
    return ActionResult(device_id, "done", f"back to {bundle}@{version}")
