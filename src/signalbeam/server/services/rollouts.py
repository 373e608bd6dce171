"""Rollout use cases: create (or plan), list, show, and the operator controls.

The decisions are the pure engine's (domain/rollouts.py); this module loads what it needs,
checks that only one active rollout holds a device, and stores what it decided.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain import rollouts as engine
from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.domain.rollout_policy import format_waves
from signalbeam.domain.rollouts import Outcome, RolloutPlan, RolloutPolicy, RolloutState
from signalbeam.server.db.models import BundleVersion, Rollout
from signalbeam.server.observability.tracing import traced
from signalbeam.server.repositories.rollouts import StaleRollout
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.bundles import LATEST, Target, newest_first
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import announce_desired
from signalbeam.server.services.failure_logs import FailureLog, of_rollout
from signalbeam.server.services.rollout_outcomes import apply_outcome
from signalbeam.server.services.rollout_targets import (
    checked_target,
    describe_target,
    held_devices,
    observe,
    target_document,
)

# An operator action retried this often when the engine saves the rollout at the same moment.
SAVE_ATTEMPTS = 5
Control = Callable[[RolloutState, datetime], Outcome]


@dataclass(frozen=True)
class RolloutRequest:
    """A new rollout as the API and CLI express it; the policy is already parsed."""

    bundle: str
    version: str
    target: Target
    policy: RolloutPolicy


@dataclass(frozen=True)
class PlannedRollout:
    """A dry run: the resolved version, the target's size, and the plan."""

    bundle: str
    version: str
    target: dict[str, Any]
    devices: int
    plan: RolloutPlan


@dataclass(frozen=True)
class RolloutView:
    """A stored rollout and its decoded state, for show and list.

    `failure_logs` (only from `show`) holds the failing unit's last lines of the first
    failed devices, by device id.
    """

    row: Rollout
    state: RolloutState
    failure_logs: Mapping[str, FailureLog] = field(default_factory=dict)


async def _version(uow: UnitOfWork, name: str, version: str) -> BundleVersion:
    if version == LATEST:
        highest = await uow.bundles.highest(name)
        row = newest_first(highest)[0] if highest else None
    else:
        row = await uow.bundles.version(name, version)
    if row is not None:
        return row
    if await uow.bundles.get(name) is None:
        raise NotFound(
            f'no bundle "{name}" in this tenant; push it first (signalbeam bundles push) or '
            "list bundles with `signalbeam bundles ls`",
            field="bundle",
        )
    raise NotFound(
        f"no version {version} of {name}; push it first or list versions with "
        f"`signalbeam bundles show {name}`",
        field="version",
    )


async def _prepare(uow: UnitOfWork, request: RolloutRequest) -> tuple[BundleVersion, list[str]]:
    """The version and target of a new rollout, refused if another rollout holds a device."""
    version = await _version(uow, request.bundle, request.version)
    device_ids = await checked_target(uow, request.target)
    held = await held_devices(uow, await uow.rollouts.active(), with_targets=True)
    engine.ensure_exclusive(device_ids, held)
    return version, device_ids


async def plan(runtime: Runtime, actor: Actor, request: RolloutRequest) -> PlannedRollout:
    """What the rollout would do now: devices per wave and which are offline; changes nothing."""
    async with runtime.unit_of_work(actor) as uow:
        version, device_ids = await _prepare(uow, request)
        observations = await observe(uow, device_ids, {})
    result = engine.plan(request.policy, device_ids, observations)
    document = target_document(request.target)
    return PlannedRollout(version.name, version.version, document, len(device_ids), result)


@traced("rollouts.create")
async def create(runtime: Runtime, actor: Actor, request: RolloutRequest) -> RolloutView:
    """Store a new running rollout; the engine starts its first wave on its next step."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        await uow.rollouts.lock_tenant()
        version, device_ids = await _prepare(uow, request)
        document = target_document(request.target)
        row = await uow.rollouts.add(
            Rollout(
                status=engine.RolloutStatus.RUNNING.value,
                active=True,
                bundle=version.name,
                version=version.version,
                target=document,
                state={},
                revision=0,
                created_at=now,
                created_by=str(actor),
                updated_at=now,
            )
        )
        state = engine.create_rollout(
            str(row.id), version.name, version.version, request.policy, now
        )
        row.state = state.to_dict()
        waves = format_waves(request.policy.waves)
        uow.record(
            EventType.ROLLOUT_CREATED,
            f"{state.label} created for {describe_target(document)} ({len(device_ids)} devices "
            f"now), waves {waves}",
            data={"rollout_id": row.id, "status": state.status.value, "ref": state.ref},
        )
        await uow.commit()
    return RolloutView(row, state)


async def list_rollouts(
    runtime: Runtime, actor: Actor, status: str | None = None, limit: int = 100
) -> list[RolloutView]:
    """Rollouts of the tenant, newest first."""
    if status is not None and status not in {s.value for s in engine.RolloutStatus}:
        allowed = ", ".join(s.value for s in engine.RolloutStatus)
        raise InvalidInput(f'status "{status}" is not one of: {allowed}', field="status")
    async with runtime.unit_of_work(actor) as uow:
        rows = await uow.rollouts.search(status, limit)
    return [RolloutView(row, RolloutState.from_dict(row.state)) for row in rows]


async def _rollout(uow: UnitOfWork, rollout_id: int) -> Rollout:
    row = await uow.rollouts.get(rollout_id)
    if row is None:
        raise NotFound(
            f"no rollout {rollout_id} in this tenant; list rollouts with `signalbeam rollouts ls`",
            field="rollout_id",
        )
    return row


async def show(runtime: Runtime, actor: Actor, rollout_id: int) -> RolloutView:
    """One rollout with every device it has taken into a wave."""
    async with runtime.unit_of_work(actor) as uow:
        row = await _rollout(uow, rollout_id)
        state = RolloutState.from_dict(row.state)
        logs = await of_rollout(uow, row, state)
    return RolloutView(row, state, logs)


@traced("rollouts.control")
async def control(runtime: Runtime, actor: Actor, rollout_id: int, action: Control) -> RolloutView:
    """Pause, resume, cancel or roll back; retried if the engine saves the rollout meanwhile."""
    actor.require(Role.OPERATOR)
    for attempt in range(SAVE_ATTEMPTS):
        try:
            return await _control_once(runtime, actor, rollout_id, action)
        except StaleRollout:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _control_once(
    runtime: Runtime, actor: Actor, rollout_id: int, action: Control
) -> RolloutView:
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        row = await _rollout(uow, rollout_id)
        outcome = action(RolloutState.from_dict(row.state), now)
        applied = await apply_outcome(uow, row, outcome, now)
        await uow.commit()
    announce_desired(runtime, applied.pending)
    # The row object still holds what was read; the view shows what was saved.
    return RolloutView(row, applied.state)


async def pause(runtime: Runtime, actor: Actor, rollout_id: int) -> RolloutView:
    """Stop starting devices; devices already updating finish."""
    return await control(runtime, actor, rollout_id, engine.pause)


async def resume(runtime: Runtime, actor: Actor, rollout_id: int) -> RolloutView:
    """Continue a paused or halted rollout."""
    return await control(runtime, actor, rollout_id, engine.resume)


async def cancel(runtime: Runtime, actor: Actor, rollout_id: int) -> RolloutView:
    """Stop for good; devices already on the new version keep it."""
    return await control(runtime, actor, rollout_id, engine.cancel)


async def rollback(runtime: Runtime, actor: Actor, rollout_id: int) -> RolloutView:
    """Set every device this rollout changed back to what it ran before."""
    return await control(runtime, actor, rollout_id, engine.rollback)
