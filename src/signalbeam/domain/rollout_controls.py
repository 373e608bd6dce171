"""Operator actions on a rollout (pause, resume, cancel, rollback) and the halt a gate causes.

Each takes the state and the time and returns an `Outcome`; a request that makes no sense in
the rollout's status raises `Conflict` with a message that says what is possible instead.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from signalbeam.domain.errors import Conflict
from signalbeam.domain.rollout_policy import OnFailure
from signalbeam.domain.rollout_state import (
    Action,
    Cause,
    DeviceRollout,
    DeviceRolloutStatus,
    Emit,
    Outcome,
    Revert,
    RolloutEventType,
    RolloutState,
    RolloutStatus,
)

# How many failed devices a halt message names before it says "and N more".
NAMED_FAILURES = 10

_POSSIBLE = {
    RolloutStatus.RUNNING: "a running rollout can be paused, cancelled or rolled back",
    RolloutStatus.PAUSED: "a paused rollout can be resumed, cancelled or rolled back",
    RolloutStatus.HALTED: (
        "a halted rollout can be resumed (accepting its failures), cancelled or rolled back"
    ),
    RolloutStatus.COMPLETED: "a completed rollout can only be rolled back",
    RolloutStatus.CANCELLED: "a cancelled rollout can only be rolled back",
    RolloutStatus.ROLLED_BACK: "a rolled-back rollout is finished; start a new one to try again",
}
_ONGOING = (RolloutStatus.RUNNING, RolloutStatus.PAUSED, RolloutStatus.HALTED)


def pause(state: RolloutState, now: datetime) -> Outcome:
    """Stop starting devices; devices already updating finish and are still tracked."""
    _require(state, "paused", RolloutStatus.RUNNING)
    message = f"{state.label} paused; devices already updating finish, no new ones start"
    paused = replace(state, status=RolloutStatus.PAUSED, reason="paused by an operator")
    return _done(paused, now, Emit(RolloutEventType.PAUSED, message))


def resume(state: RolloutState, now: datetime) -> Outcome:
    """Continue a paused or halted rollout.

    Resuming after a halt means the operator accepts the failures so far: they stop counting
    against either gate, or the rollout would halt again at once. Resuming after a pause
    accepts nothing, so failures that came in during the pause still trip the gates.
    """
    _require(state, "resumed", RolloutStatus.PAUSED, RolloutStatus.HALTED)
    halted = state.status is RolloutStatus.HALTED
    devices = tuple(_accept(device) for device in state.devices) if halted else state.devices
    accepted = sum(new is not old for new, old in zip(devices, state.devices, strict=True))
    message = f"{state.label} resumed" + (
        f"; {accepted} failed devices are accepted and no longer count against the gates"
        if accepted
        else ""
    )
    running = replace(state, status=RolloutStatus.RUNNING, reason="", devices=devices)
    return _done(running, now, Emit(RolloutEventType.RESUMED, message))


def cancel(state: RolloutState, now: datetime) -> Outcome:
    """Stop starting devices for good; devices already given the new version keep it."""
    _require(state, "cancelled", *_ONGOING)
    devices = tuple(
        _stop(device, now, _cancelled_reason(state, device)) for device in state.devices
    )
    kept = sum(device.changed for device in devices)
    message = f"{state.label} cancelled; {kept} devices given {state.ref} keep it"
    cancelled = replace(
        state, status=RolloutStatus.CANCELLED, reason="cancelled by an operator", devices=devices
    )
    return _done(cancelled, now, Emit(RolloutEventType.CANCELLED, message))


def rollback(state: RolloutState, now: datetime) -> Outcome:
    """Set every device this rollout changed back to what it ran before, whatever the status."""
    _require(state, "rolled back", *_ONGOING, RolloutStatus.COMPLETED, RolloutStatus.CANCELLED)
    return roll_back(state, now, "rolled back by an operator")


def halt(state: RolloutState, now: datetime, why: str) -> Outcome:
    """A gate failed: roll back, or pause as `halted` when the policy says so."""
    reason = f"{why}; {describe_failures(state)}"
    event = Emit(RolloutEventType.HALTED, f"{state.label} halted: {reason}")
    if state.policy.on_failure is OnFailure.PAUSE:
        return _done(replace(state, status=RolloutStatus.HALTED, reason=reason), now, event)
    rolled = roll_back(state, now, reason)
    return Outcome(rolled.state, (event, *rolled.actions))


def roll_back(state: RolloutState, now: datetime, reason: str) -> Outcome:
    """Revert every changed device not reverted yet; open devices stop where they are."""
    reverts: list[Action] = [
        Revert(device.device_id, device.previous_bundle, device.previous_version)
        for device in state.devices
        if device.changed and not device.reverted
    ]
    stopped = "the rollout was rolled back before this device finished"
    devices = tuple(
        _stop(replace(device, reverted=device.changed), now, stopped) for device in state.devices
    )
    message = f"{state.label} rolled back: {len(reverts)} devices return to their previous version"
    rolled = replace(state, status=RolloutStatus.ROLLED_BACK, reason=reason, devices=devices)
    return Outcome(
        replace(rolled, updated_at=now), (*reverts, Emit(RolloutEventType.ROLLED_BACK, message))
    )


def failures(state: RolloutState) -> list[tuple[str, str]]:
    """Each failed device with the reason, in wave order."""
    return [
        (device.device_id, device.reason)
        for device in state.devices
        if device.status is DeviceRolloutStatus.FAILED
    ]


def describe_failures(state: RolloutState) -> str:
    """`failed: pi-1 (reason), pi-2 (reason) and 3 more`, for halt messages."""
    failed = failures(state)
    if not failed:
        return "no device failed"
    named = ", ".join(f"{device} ({reason})" for device, reason in failed[:NAMED_FAILURES])
    more = len(failed) - NAMED_FAILURES
    return f"failed: {named}" + (f" and {more} more" if more > 0 else "")


def _require(state: RolloutState, verb: str, *allowed: RolloutStatus) -> None:
    if state.status not in allowed:
        raise Conflict(
            f"{state.label} is {state.status}, so it cannot be {verb}; {_POSSIBLE[state.status]}",
            field="status",
        )


def _accept(device: DeviceRollout) -> DeviceRollout:
    failed = device.status is DeviceRolloutStatus.FAILED
    return replace(device, accepted=True) if failed and not device.accepted else device


def _stop(device: DeviceRollout, now: datetime, reason: str) -> DeviceRollout:
    if not device.in_flight:
        return device
    return replace(
        device, status=DeviceRolloutStatus.SKIPPED, cause=Cause.STOPPED, reason=reason, since=now
    )


def _cancelled_reason(state: RolloutState, device: DeviceRollout) -> str:
    if device.status is DeviceRolloutStatus.PENDING and not device.changed:
        return "the rollout was cancelled before this device started"
    return f"the rollout was cancelled while this device was updating; it keeps {state.ref}"


def _done(state: RolloutState, now: datetime, *actions: Action) -> Outcome:
    return Outcome(replace(state, updated_at=now), actions)
