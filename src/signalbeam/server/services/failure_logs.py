"""The last lines a failed unit wrote, found for the devices a rollout lists as failed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signalbeam.domain.rollouts import Cause, DeviceRollout, DeviceRolloutStatus, RolloutState
from signalbeam.server.db.models import Device, Rollout
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.services.context import UnitOfWork

# The rollout page refreshes every few seconds; the first failures say enough, and each
# further one is on its device's page.
MAX_SHOWN = 10
UPDATE_FAILED = "agent.update_failed"


@dataclass(frozen=True)
class FailureLog:
    """Which unit failed a device's update, and the last lines it wrote (oldest first)."""

    unit: str
    lines: list[str]


async def of_rollout(uow: UnitOfWork, row: Rollout, state: RolloutState) -> dict[str, FailureLog]:
    """The failure log of each of the first failed devices of a rollout, by device id.

    The `agent.update_failed` event keeps the lines after the device moves on (a rollback
    makes it report `running` again); its current report serves until that event arrives,
    and for devices that report failures without sending events (the simulator).
    """
    failed = [
        entry
        for entry in state.devices
        if entry.status is DeviceRolloutStatus.FAILED and entry.cause is Cause.AGENT
    ][:MAX_SHOWN]
    if not failed:
        return {}
    devices = {d.device_id: d for d in await uow.devices.get_many([e.device_id for e in failed])}
    found: dict[str, FailureLog] = {}
    for entry in failed:
        device = devices.get(entry.device_id)
        if device is None:
            continue
        logged = await _from_events(uow, device, entry, row) or _from_report(device, entry)
        if logged is not None:
            found[entry.device_id] = logged
    return found


async def _from_events(
    uow: UnitOfWork, device: Device, entry: DeviceRollout, row: Rollout
) -> FailureLog | None:
    query = EventQuery(device_pk=device.id, types=[UPDATE_FAILED], since=row.created_at, limit=5)
    for event in await uow.events.search(query):
        if (logged := _matching(event.data, entry)) is not None:
            return logged
    return None


def _from_report(device: Device, entry: DeviceRollout) -> FailureLog | None:
    reported = device.reported_state or {}
    return _matching(reported, entry) if reported.get("status") == "failed" else None


def _matching(data: Mapping[str, Any], entry: DeviceRollout) -> FailureLog | None:
    """The log in `data` when it speaks of the failure the rollout recorded, else None."""
    reason, unit, lines = data.get("reason"), data.get("failed_unit"), data.get("failure_log")
    # The rollout's reason is the agent's, sometimes with a note after it.
    if not (isinstance(reason, str) and reason and entry.reason.startswith(reason)):
        return None
    generation = data.get("generation")
    if isinstance(generation, int) and generation < entry.generation:
        return None  # an earlier failure of the same kind, before this rollout's assignment
    if not (isinstance(unit, str) and isinstance(lines, list) and lines):
        return None
    return FailureLog(unit, [str(line) for line in lines])
