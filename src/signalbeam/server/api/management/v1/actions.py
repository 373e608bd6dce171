"""Device actions on one device, or many through a group or selector.

Cordon, uncordon, rollback and drain change what the control plane wants; restart (a unit),
restart-agent and reboot are carried out by the device. `POST /actions` answers with every device's result at once, or, asked with
`Accept: application/x-ndjson`, one line per device as each result comes (for progress).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1.field_rules import TARGET_RULE, GroupName, Selector
from signalbeam.server.api.management.v1.schemas import Body
from signalbeam.server.api.management.v1.session_schemas import UnitName
from signalbeam.server.services import actions
from signalbeam.server.services.bundles import Target

router = APIRouter(tags=["actions"])
ActionName = Literal[
    "cordon", "uncordon", "rollback", "drain", "restart", "restart-agent", "reboot"
]
NDJSON = "application/x-ndjson"


class ActionRequest(Body):
    """An action over exactly one target: devices, a group or a selector."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=TARGET_RULE)

    action: ActionName
    unit: UnitName | None = Field(default=None, description="the unit to restart (restart only)")
    devices: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    group: GroupName | None = None
    selector: Selector | None = None
    plan: StrictBool = Field(default=False, description="only say which devices it would touch")


class RestartRequest(Body):
    """Which unit of the device to restart."""

    unit: UnitName


class ActionDevice(BaseModel):
    device_id: str
    status: Literal["planned", "done", "unchanged", "failed", "skipped", "pending"] = Field(
        description="skipped: not reached (offline, no such unit); pending: asked, and the "
        "device confirms later (a reboot: its new boot id; a drain: its units stopped)"
    )
    detail: str


class ActionOutcome(BaseModel):
    """Per-device results of an action (or, planned, what it would do)."""

    action: ActionName
    plan: bool
    devices: list[ActionDevice]


@router.post(
    "/actions",
    response_model=ActionOutcome,
    responses={200: {"content": {NDJSON: {"schema": ActionDevice.model_json_schema()}}}},
)
async def run_action(
    body: ActionRequest,
    runtime: RuntimeDep,
    actor: CurrentActor,
    accept: Annotated[str, Header()] = "application/json",
) -> ActionOutcome | StreamingResponse:
    """Run an action on every device of the target; `plan` first to see which."""
    target = Target(body.devices, body.group, body.selector)
    if NDJSON in accept:
        started = await actions.start(
            runtime, actor, body.action, target, plan=body.plan, unit=body.unit
        )
        return StreamingResponse(_lines(started.results), media_type=NDJSON)
    results = await actions.run(runtime, actor, body.action, target, plan=body.plan, unit=body.unit)
    return _outcome(body.action, body.plan, results)


async def _lines(results: AsyncIterator[actions.ActionResult]) -> AsyncIterator[bytes]:
    async for result in results:
        yield _device(result).model_dump_json().encode() + b"\n"


async def _one(
    runtime: RuntimeDep,
    actor: CurrentActor,
    action: ActionName,
    device_id: str,
    unit: str | None = None,
) -> ActionOutcome:
    target = Target(devices=[device_id])
    results = await actions.run(runtime, actor, action, target, unit=unit)
    return _outcome(action, False, results)


@router.post("/devices/{device_id}:cordon", response_model=ActionOutcome)
async def cordon(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Leave this device out of new rollouts and assignments (what it runs stays)."""
    return await _one(runtime, actor, "cordon", device_id)


@router.post("/devices/{device_id}:uncordon", response_model=ActionOutcome)
async def uncordon(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Let new rollouts and assignments include this device again."""
    return await _one(runtime, actor, "uncordon", device_id)


@router.post("/devices/{device_id}:rollback", response_model=ActionOutcome)
async def rollback(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Give the device the bundle version it was given before its current one."""
    return await _one(runtime, actor, "rollback", device_id)


@router.post("/devices/{device_id}:drain", response_model=ActionOutcome)
async def drain(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Cordon the device and stop its bundle's units (uncordon, then rollback, undoes it)."""
    return await _one(runtime, actor, "drain", device_id)


@router.post("/devices/{device_id}:restart", response_model=ActionOutcome)
async def restart(
    device_id: str, body: RestartRequest, runtime: RuntimeDep, actor: CurrentActor
) -> ActionOutcome:
    """Restart one container or app of the device's bundle."""
    return await _one(runtime, actor, "restart", device_id, body.unit)


@router.post("/devices/{device_id}:restart-agent", response_model=ActionOutcome)
async def restart_agent(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Restart the device's agent (its bundle keeps running)."""
    return await _one(runtime, actor, "restart-agent", device_id)


@router.post("/devices/{device_id}:reboot", response_model=ActionOutcome)
async def reboot(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Reboot the device; `pending` until it is back with a new boot id."""
    return await _one(runtime, actor, "reboot", device_id)


def _device(result: actions.ActionResult) -> ActionDevice:
    return ActionDevice(device_id=result.device_id, status=result.status, detail=result.detail)


def _outcome(action: ActionName, plan: bool, results: list[actions.ActionResult]) -> ActionOutcome:
    return ActionOutcome(action=action, plan=plan, devices=[_device(r) for r in results])
