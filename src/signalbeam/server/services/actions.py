"""Device actions: one-shot operations over devices, a group or a selector, planned first.

Rollback gives each device the bundle version it was given before its current one.

Cordon and uncordon change only what the control plane will do next (new rollouts and
assignments leave a cordoned device out); they never touch what the device runs. Drain
cordons and makes "run nothing" the desired state (drain.py).

Restart (a unit), restart-agent and reboot are carried out by the device (device_actions.py);
`start` hands their results over one by one as devices answer, for progress.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from signalbeam.domain.errors import DomainError, InvalidInput
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.sessions import REBOOT, RESTART, RESTART_AGENT
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import device_actions
from signalbeam.server.services.action_results import ActionResult
from signalbeam.server.services.bundles import Target, assign
from signalbeam.server.services.context import Actor
from signalbeam.server.services.device_rollback import previous_version
from signalbeam.server.services.drain import drain
from signalbeam.server.services.rollout_targets import checked_target

__all__ = ["ACTIONS", "ActionResult", "Started", "run", "start"]

CORDON, UNCORDON, ROLLBACK, DRAIN = "cordon", "uncordon", "rollback", "drain"
ON_DEVICE = (RESTART, RESTART_AGENT, REBOOT)
ACTIONS = (CORDON, UNCORDON, ROLLBACK, DRAIN, *ON_DEVICE)


@dataclass(frozen=True)
class Started:
    """An action checked and under way: the target's devices, and each result as it comes."""

    device_ids: list[str]
    results: AsyncIterator[ActionResult]


async def run(
    runtime: Runtime,
    actor: Actor,
    action: str,
    target: Target,
    *,
    plan: bool = False,
    unit: str | None = None,
) -> list[ActionResult]:
    """Carry out `action` on every device of the target (or, with `plan`, only say what)."""
    started = await start(runtime, actor, action, target, plan=plan, unit=unit)
    found = {result.device_id: result async for result in started.results}
    return [found[device_id] for device_id in started.device_ids if device_id in found]


async def start(
    runtime: Runtime,
    actor: Actor,
    action: str,
    target: Target,
    *,
    plan: bool = False,
    unit: str | None = None,
) -> Started:
    """Check the action and its target (errors raise here), then start it."""
    actor.require(Role.OPERATOR)
    _check(action, unit)
    target.kind()
    if action in ON_DEVICE:
        request = device_actions.Ask(action, unit)
        device_ids, results = await device_actions.start(runtime, actor, request, target, plan)
        return Started(device_ids, results)
    if action == ROLLBACK:
        return _all_at_once(await _roll_back(runtime, actor, target, plan))
    if action == DRAIN:
        return _all_at_once(await drain(runtime, actor, target, plan))
    return _all_at_once(await _cordon(runtime, actor, action, target, plan))


def _check(action: str, unit: str | None) -> None:
    if action not in ACTIONS:
        raise InvalidInput(
            f"unknown action {action!r}; actions are {', '.join(ACTIONS)}", field="action"
        )
    if action == RESTART and not unit:
        raise InvalidInput(
            "name the unit to restart, e.g. unit=web (`signalbeam restart DEVICE UNIT`)",
            field="unit",
        )
    if action != RESTART and unit:
        raise InvalidInput(f"{action} takes no unit; only restart does", field="unit")


def _all_at_once(results: Sequence[ActionResult]) -> Started:
    async def each() -> AsyncIterator[ActionResult]:
        for result in results:
            yield result

    return Started([r.device_id for r in results], each())


async def _cordon(
    runtime: Runtime, actor: Actor, action: str, target: Target, plan: bool
) -> list[ActionResult]:
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
