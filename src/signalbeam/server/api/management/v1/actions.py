"""Device actions: cordon, uncordon and roll back one device, or many through a group or selector."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1.schemas import Body
from signalbeam.server.services import actions
from signalbeam.server.services.bundles import Target

router = APIRouter(tags=["actions"])
ActionName = Literal["cordon", "uncordon", "rollback"]


class ActionRequest(Body):
    """An action over exactly one target: devices, a group or a selector."""

    action: ActionName
    devices: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    group: str | None = Field(default=None, max_length=63)
    selector: str | None = Field(default=None, max_length=2000)
    plan: bool = Field(default=False, description="only say which devices it would touch")


class ActionDevice(BaseModel):
    device_id: str
    status: Literal["planned", "done", "unchanged", "failed"]
    detail: str


class ActionOutcome(BaseModel):
    """Per-device results of an action (or, planned, what it would do)."""

    action: ActionName
    plan: bool
    devices: list[ActionDevice]


@router.post("/actions", response_model=ActionOutcome)
async def run_action(
    body: ActionRequest, runtime: RuntimeDep, actor: CurrentActor
) -> ActionOutcome:
    """Run an action on every device of the target; `plan` first to see which."""
    target = Target(body.devices, body.group, body.selector)
    results = await actions.run(runtime, actor, body.action, target, plan=body.plan)
    return _outcome(body.action, body.plan, results)


@router.post("/devices/{device_id}:cordon", response_model=ActionOutcome)
async def cordon(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Leave this device out of new rollouts and assignments (what it runs stays)."""
    results = await actions.run(runtime, actor, actions.CORDON, Target(devices=[device_id]))
    return _outcome("cordon", False, results)


@router.post("/devices/{device_id}:uncordon", response_model=ActionOutcome)
async def uncordon(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Let new rollouts and assignments include this device again."""
    results = await actions.run(runtime, actor, actions.UNCORDON, Target(devices=[device_id]))
    return _outcome("uncordon", False, results)


@router.post("/devices/{device_id}:rollback", response_model=ActionOutcome)
async def rollback(device_id: str, runtime: RuntimeDep, actor: CurrentActor) -> ActionOutcome:
    """Give the device the bundle version it was given before its current one."""
    results = await actions.run(runtime, actor, actions.ROLLBACK, Target(devices=[device_id]))
    return _outcome("rollback", False, results)


def _outcome(action: ActionName, plan: bool, results: list[actions.ActionResult]) -> ActionOutcome:
    devices = [
        ActionDevice(device_id=r.device_id, status=r.status, detail=r.detail) for r in results
    ]
    return ActionOutcome(action=action, plan=plan, devices=devices)
