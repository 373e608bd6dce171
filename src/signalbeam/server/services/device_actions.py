"""Actions the device itself carries out: restart a unit, restart the agent, reboot.

Each is planned like every action, then asked of every reachable device of the target over
an `action` session (action_sessions.py). A device that cannot be reached now is `skipped`,
never `failed`: offline, a restart of a unit it does not run, a reboot its agent could not
confirm. A reboot is `pending` until the device reports a new boot id (workers/reboots.py).
Every answer is recorded as an event, with who asked, the device, the unit and the result,
also when the operator stops reading the progress (action_runs.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.errors import Conflict
from signalbeam.domain.model import EventType
from signalbeam.protocol.sessions import REBOOT, RESTART, RESTART_AGENT
from signalbeam.server.db.models import Device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.action_results import ActionResult
from signalbeam.server.services.action_sessions import Answer, DeviceRef, ask, bounded
from signalbeam.server.services.bundles import Target
from signalbeam.server.services.context import Actor
from signalbeam.server.services.remote_sessions import check_reachable
from signalbeam.server.services.rollout_targets import checked_target
from signalbeam.server.workers.reboots import short


@dataclass(frozen=True)
class Reachable:
    """A device of the target as the action needs it, read before anything is asked."""

    ref: DeviceRef
    skip: str | None  # why it is not asked, if it is not
    boot_id: str | None


@dataclass(frozen=True)
class Ask:
    """One action as the operator gave it."""

    action: str
    unit: str | None = None

    @property
    def what(self) -> str:
        """The action in words: `restart web`, `restart the agent`, `reboot`."""
        if self.action == RESTART:
            return f"restart {self.unit}"
        return "restart the agent" if self.action == RESTART_AGENT else self.action


async def start(
    runtime: Runtime, actor: Actor, request: Ask, target: Target, plan: bool
) -> tuple[list[str], AsyncIterator[ActionResult]]:
    """The target's devices, and each one's result as it comes (skips and plans first)."""
    async with runtime.unit_of_work(actor) as uow:
        device_ids = await checked_target(uow, target)
        found = {d.device_id: d for d in await uow.devices.get_many(device_ids)}
        devices = [_reachable(found[device_id], request) for device_id in device_ids]
    results = _results(runtime, actor, request, devices, plan)
    if plan:
        return device_ids, results
    # Devices asked act anyway: their answers are recorded even if the operator goes.
    return device_ids, runtime.action_runs.start(results, len(devices))


async def _results(
    runtime: Runtime, actor: Actor, request: Ask, devices: Sequence[Reachable], plan: bool
) -> AsyncIterator[ActionResult]:
    ready = []
    for device in devices:
        if device.skip is not None:
            yield ActionResult(device.ref.device_id, "skipped", device.skip)
        elif plan:
            yield ActionResult(device.ref.device_id, "planned", request.what)
        else:
            ready.append(device)

    async def carry_out(device: Reachable) -> ActionResult:
        return await _carry_out(runtime, actor, request, device)

    async for result in bounded(ready, carry_out):
        yield result


def _reachable(device: Device, request: Ask) -> Reachable:
    ref = DeviceRef(device.id, device.device_id)
    try:
        check_reachable(device)
    except Conflict as err:
        return Reachable(ref, err.detail, device.boot_id)
    return Reachable(ref, _unable(device, request), device.boot_id)


def _unable(device: Device, request: Ask) -> str | None:
    """Why this online device cannot take the action, judged from what it last reported."""
    if request.action == REBOOT and device.boot_id is None:
        return (
            "its agent does not report a boot id, so a reboot could not be confirmed; "
            "update the agent"
        )
    if request.action != RESTART or device.reported_state is None:
        return None
    units = sorted(str(item.get("name")) for item in device.reported_state.get("items", []))
    if request.unit in units:
        return None
    runs = f"it runs {', '.join(units)}" if units else "it runs no units"
    return f"no unit {request.unit!r} on {device.device_id} ({runs})"


async def _carry_out(
    runtime: Runtime, actor: Actor, request: Ask, device: Reachable
) -> ActionResult:
    if request.action == REBOOT:
        return await _reboot(runtime, actor, device)
    answer = await ask(runtime, actor, device.ref, request.action, request.unit)
    device_id = device.ref.device_id
    if not answer.ok:
        return await _failed(runtime, actor, request, device, answer)
    if request.action == RESTART:
        message = f"{request.unit} on {device_id} restarted by {actor.name}"
        kind = EventType.DEVICE_UNIT_RESTARTED
    else:
        message = f"agent on {device_id} restarting, asked by {actor.name}"
        kind = EventType.DEVICE_AGENT_RESTARTED
    data = {"unit": request.unit, "detail": answer.detail}
    await _record(runtime, actor, device.ref, kind, message, data)
    return ActionResult(device_id, "done", answer.detail)


async def _reboot(runtime: Runtime, actor: Actor, device: Reachable) -> ActionResult:
    # Noted before asking: the device may be back with its new boot id before it answers.
    await _note_reboot(runtime, actor, device.ref, datetime.now(UTC))
    answer = await ask(runtime, actor, device.ref, REBOOT)
    if not answer.ok and not answer.lost:
        await _note_reboot(runtime, actor, device.ref, None)
        return await _failed(runtime, actor, Ask(REBOOT), device, answer)
    # A connection lost after the request went out is what a reboot looks like, too.
    boot = short(device.boot_id)
    message = f"{device.ref.device_id} rebooting, asked by {actor.name} (boot id {boot})"
    data = {"boot_id": device.boot_id, "detail": answer.detail}
    await _record(runtime, actor, device.ref, EventType.DEVICE_REBOOT_REQUESTED, message, data)
    detail = f"rebooting; done once it reports a new boot id (now {boot})"
    return ActionResult(device.ref.device_id, "pending", detail)


async def _failed(
    runtime: Runtime, actor: Actor, request: Ask, device: Reachable, answer: Answer
) -> ActionResult:
    device_id = device.ref.device_id
    message = f"{request.what} on {device_id} by {actor.name} failed: {answer.detail}"
    data = {"action": request.action, "unit": request.unit, "detail": answer.detail}
    await _record(runtime, actor, device.ref, EventType.DEVICE_ACTION_FAILED, message, data)
    return ActionResult(device_id, "failed", answer.detail)


async def _note_reboot(runtime: Runtime, actor: Actor, ref: DeviceRef, at: datetime | None) -> None:
    async with runtime.unit_of_work(actor) as uow:
        await uow.devices.set_reboot_requested(ref.pk, at, str(actor) if at else None)
        await uow.commit()


async def _record(
    runtime: Runtime,
    actor: Actor,
    ref: DeviceRef,
    kind: EventType,
    message: str,
    data: dict[str, Any],
) -> None:
    async with runtime.unit_of_work(actor) as uow:
        await uow.record_devices(kind, [(ref.pk, ref.device_id, message, data)])
        await uow.commit()
