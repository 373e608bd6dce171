"""Rollouts: create (or plan with `?plan=true`), list, show, pause, resume, cancel, roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from signalbeam.domain.model import Role
from signalbeam.domain.rollout_state import RolloutStatus
from signalbeam.domain.rollouts import parse_policy
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import rollout_schemas as schemas
from signalbeam.server.services import rollouts as rollout_service
from signalbeam.server.services.bundles import Target

router = APIRouter(prefix="/rollouts", tags=["rollouts"])
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the rollout's id")]


def _request(body: schemas.RolloutCreate) -> rollout_service.RolloutRequest:
    policy = parse_policy(
        waves=body.waves,
        success_threshold=body.success_threshold,
        failure_threshold=body.failure_threshold,
        on_failure=body.on_failure,
        soak=body.soak,
        apply_timeout=body.apply_timeout,
        offline=body.offline,
        offline_wait=body.offline_wait,
        max_retries=body.max_retries,
        retry_backoff=body.retry_backoff,
        max_parallel=body.max_parallel,
        window=body.window,
        dynamic=body.dynamic,
    )
    target = Target(body.devices, body.group, body.selector)
    target.kind()
    return rollout_service.RolloutRequest(body.bundle, body.version, target, policy)


@router.post(
    "",
    response_model=schemas.RolloutDetail | schemas.RolloutPlanPublic,
    status_code=201,
    responses={200: {"description": "with plan=true: the dry run; nothing was changed"}},
)
async def create(
    body: schemas.RolloutCreate,
    response: Response,
    runtime: RuntimeDep,
    actor: CurrentActor,
    plan: Annotated[bool, Query(description="only show what would happen")] = False,
) -> schemas.RolloutDetail | schemas.RolloutPlanPublic:
    """Start a rollout of a bundle version to one target (201), or plan it (200, no change)."""
    actor.require(Role.OPERATOR)
    request = _request(body)
    if plan:
        response.status_code = 200
        return schemas.planned(await rollout_service.plan(runtime, actor, request))
    return schemas.rollout_detail(await rollout_service.create(runtime, actor, request))


@router.get("", response_model=list[schemas.RolloutPublic])
async def list_rollouts(
    runtime: RuntimeDep,
    actor: CurrentActor,
    status: Annotated[RolloutStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[schemas.RolloutPublic]:
    """Rollouts of your tenant, newest first; `status` keeps one status only."""
    views = await rollout_service.list_rollouts(runtime, actor, status, limit)
    return [schemas.rollout(view) for view in views]


@router.get("/{rollout_id}", response_model=schemas.RolloutDetail)
async def show(
    rollout_id: RolloutId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.RolloutDetail:
    """A rollout: per-wave counts, failures with reasons, and every device's status."""
    return schemas.rollout_detail(await rollout_service.show(runtime, actor, rollout_id))


@router.post("/{rollout_id}/pause", response_model=schemas.RolloutDetail)
async def pause(
    rollout_id: RolloutId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.RolloutDetail:
    """Stop starting devices; those already updating finish and are still tracked."""
    return schemas.rollout_detail(await rollout_service.pause(runtime, actor, rollout_id))


@router.post("/{rollout_id}/resume", response_model=schemas.RolloutDetail)
async def resume(
    rollout_id: RolloutId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.RolloutDetail:
    """Continue a paused rollout, or a halted one (accepting its failures so far)."""
    return schemas.rollout_detail(await rollout_service.resume(runtime, actor, rollout_id))


@router.post("/{rollout_id}/cancel", response_model=schemas.RolloutDetail)
async def cancel(
    rollout_id: RolloutId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.RolloutDetail:
    """Stop for good; devices already given the new version keep it."""
    return schemas.rollout_detail(await rollout_service.cancel(runtime, actor, rollout_id))


@router.post("/{rollout_id}/rollback", response_model=schemas.RolloutDetail)
async def rollback(
    rollout_id: RolloutId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.RolloutDetail:
    """Set every device this rollout changed back to the version it ran before."""
    return schemas.rollout_detail(await rollout_service.rollback(runtime, actor, rollout_id))
