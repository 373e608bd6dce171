"""Carrying out what the rollout engine decided, in one transaction with the new state.

`Assign` and `Revert` set desired state through the same code as `signalbeam assign`, so
agents see a new generation; `Emit` becomes an activity record on the live stream. The state
is saved last, with a revision check: if anyone saved the rollout meanwhile, the whole
transaction (desired state included) is dropped and the engine decides again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signalbeam.domain.model import EventType
from signalbeam.domain.rollouts import (
    Assign,
    Emit,
    Outcome,
    Revert,
    RolloutState,
    record_generations,
)
from signalbeam.server.db.models import Rollout
from signalbeam.server.services.context import UnitOfWork
from signalbeam.server.services.desired import Pending, write_desired
from signalbeam.server.services.signing import bundle_document

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """The saved state and the devices whose desired state changed (to announce after commit)."""

    state: RolloutState
    pending: Pending = field(default_factory=Pending)


async def apply_outcome(uow: UnitOfWork, row: Rollout, outcome: Outcome, at: datetime) -> Applied:
    """Carry out the outcome's actions in order and save its state (not committed yet)."""
    applied = Applied(outcome.state)
    for action in outcome.actions:
        if isinstance(action, Assign):
            await _assign(uow, row, action, applied)
        elif isinstance(action, Revert):
            await _revert(uow, row, action, applied)
        else:
            await _emit(uow, row, action, applied.state)
    state = applied.state
    await uow.rollouts.save(row, state.to_dict(), state.status.value, state.status.active, at)
    return applied


async def _document(uow: UnitOfWork, bundle: str, version: str) -> dict[str, Any] | None:
    row = await uow.bundles.version(bundle, version)
    if row is None:
        return None
    # The same signed document `signalbeam assign` sends, so agents verify it the same way.
    return await bundle_document(uow, row)


async def _assign(uow: UnitOfWork, row: Rollout, action: Assign, applied: Applied) -> None:
    document = await _document(uow, action.bundle, action.version)
    if document is None:
        # Versions are immutable and never deleted, so this means the database was edited.
        raise LookupError(f"rollout {row.id}: {action.bundle}@{action.version} is not stored")
    summary = f"rollout {row.id}: desired state {action.bundle}@{action.version}"
    changed = await write_desired(uow, action.device_ids, document, summary, applied.pending)
    generations = {device_id: generation for _, device_id, generation in changed}
    applied.state = record_generations(applied.state, generations)


async def _revert(uow: UnitOfWork, row: Rollout, action: Revert, applied: Applied) -> None:
    document: dict[str, Any] | None = {}
    summary = f"rollout {row.id} rolled back: desired state cleared (it ran nothing before)"
    if action.bundle is not None and action.version is not None:
        document = await _document(uow, action.bundle, action.version)
        summary = f"rollout {row.id} rolled back: desired state {action.bundle}@{action.version}"
    if document is None:
        # The device ran a version this server never stored; nothing to send it back to but
        # "nothing", which at least stops the version this rollout gave it.
        log.warning(
            "rollout %s: %s ran unknown %s@%s",
            row.id,
            action.device_id,
            action.bundle,
            action.version,
        )
        document = {}
        summary = (
            f"rollout {row.id} rolled back: desired state cleared "
            f"({action.bundle}@{action.version}, which it ran before, is not stored here)"
        )
    await write_desired(uow, [action.device_id], document, summary, applied.pending)


async def _emit(uow: UnitOfWork, row: Rollout, action: Emit, state: RolloutState) -> None:
    device = None
    if action.device_id is not None:
        found = await uow.devices.get_many([action.device_id])
        device = found[0] if found else None
    data = {"rollout_id": row.id, "status": state.status.value, "ref": state.ref}
    uow.record(EventType(action.type.value), action.message, device=device, data=data)
