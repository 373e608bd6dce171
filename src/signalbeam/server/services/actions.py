"""Device actions: one-shot operations over devices, a group or a selector, planned first.

Cordon and uncordon change only what the control plane will do next (new rollouts and
assignments leave a cordoned device out); they never touch what the device runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.model import EventType, Role
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.bundles import Target
from signalbeam.server.services.context import Actor
from signalbeam.server.services.rollout_targets import checked_target

CORDON, UNCORDON = "cordon", "uncordon"
ACTIONS = (CORDON, UNCORDON)


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, planned, would do) on one device."""

    device_id: str
    status: Literal["planned", "done", "unchanged"]
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
