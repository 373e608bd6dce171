"""One device's way through a rollout: pending → updating → soaking → succeeded | failed | skipped.

Pure functions of (rollout, device record, observation, now) → (new record, events). A report
speaks about this rollout only when its generation is at least the one the rollout gave the
device; older reports describe an earlier desired state and are ignored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from signalbeam.domain.durations import format_duration
from signalbeam.domain.model import ApplyStatus
from signalbeam.domain.rollout_policy import OfflinePolicy
from signalbeam.domain.rollout_state import (
    Cause,
    DeviceObservation,
    DeviceRollout,
    DeviceRolloutStatus,
    Emit,
    RolloutEventType,
    RolloutState,
)

# A retry never waits longer than this, however many attempts came before.
MAX_BACKOFF = timedelta(hours=1)

Change = tuple[DeviceRollout, list[Emit]]
Status = DeviceRolloutStatus


def track(
    state: RolloutState, device: DeviceRollout, seen: DeviceObservation | None, now: datetime
) -> Change:
    """Advance an updating or soaking device from what it reports; others are left alone."""
    if device.status is Status.UPDATING:
        return _track_update(state, device, seen, now)
    if device.status is Status.SOAKING:
        return _track_soak(state, device, seen, now)
    return device, []


def assign(
    state: RolloutState, device: DeviceRollout, seen: DeviceObservation, now: datetime
) -> DeviceRollout:
    """The record of a device the rollout starts updating now (first time or a retry).

    The first assignment remembers what the device ran, the rollback target. The new desired
    generation will be above the current one, so reports from before it are ignored.
    """
    first = device.attempts == 0
    bundle, version = (seen.bundle, seen.version) if first else _previous(device)
    return replace(
        device,
        status=Status.UPDATING,
        cause=None,
        reason="",
        since=now,
        attempts=device.attempts + 1,
        generation=seen.desired_generation + 1,
        retry_at=None,
        offline_since=None,
        previous_bundle=bundle,
        previous_version=version,
        changed=device.changed or (bundle, version) != (state.bundle, state.version),
    )


def hold_offline(state: RolloutState, device: DeviceRollout, now: datetime) -> Change:
    """A pending device that is offline waits, and under the skip policy is skipped in time."""
    since = device.offline_since or now
    policy = state.policy
    if policy.offline is OfflinePolicy.WAIT or now - since < policy.offline_wait:
        return replace(device, offline_since=since), []
    reason = (
        f"offline for {format_duration(policy.offline_wait)}; it is updated if it comes back "
        "while the rollout runs"
    )
    return skip(device, now, Cause.OFFLINE, reason)


def skip(device: DeviceRollout, now: datetime, cause: Cause, reason: str) -> Change:
    """Take a device out of the wave for now, saying why."""
    skipped = replace(
        device, status=Status.SKIPPED, cause=cause, reason=reason, since=now, offline_since=None
    )
    message = f"{device.device_id} skipped: {reason}"
    return skipped, [Emit(RolloutEventType.DEVICE_SKIPPED, message, device.device_id)]


def revive(
    device: DeviceRollout, seen: DeviceObservation | None, in_target: bool, now: datetime
) -> Change:
    """A skipped device whose obstacle has gone is pending again, so the rollout retries it."""
    back = _why_back(device, seen, in_target)
    if device.status is not Status.SKIPPED or back is None:
        return device, []
    return replace(device, status=Status.PENDING, cause=Cause.RETURNED, reason=back, since=now), []


def _why_back(device: DeviceRollout, seen: DeviceObservation | None, in_target: bool) -> str | None:
    if device.cause is Cause.OFFLINE and seen is not None and seen.online:
        return "came back online"
    if device.cause is Cause.BUSY and seen is not None and seen.claimed_by is None:
        return "no longer held by another rollout"
    if device.cause is Cause.LEFT_TARGET and in_target:
        return "back in the target"
    if device.cause is Cause.CORDONED and seen is not None and not seen.cordoned:
        return "uncordoned"
    return None


def _track_update(
    state: RolloutState, device: DeviceRollout, seen: DeviceObservation | None, now: datetime
) -> Change:
    report = seen if seen is not None and seen.generation >= device.generation else None
    if report is not None and report.status == ApplyStatus.RUNNING:
        if _runs(report, state):
            soaking = replace(device, status=Status.SOAKING, since=now)
            return _track_soak(state, soaking, report, now)
        return fail(device, now, Cause.AGENT, f"runs {_ref(report)} instead of {state.ref}")
    if report is not None and report.status == ApplyStatus.FAILED:
        return _agent_failed(state, device, report, now)
    if now - device.since >= state.policy.apply_timeout:
        timeout = format_duration(state.policy.apply_timeout)
        return fail(device, now, Cause.TIMEOUT, f"not done within {timeout}; {_last(report, seen)}")
    return device, []


def _track_soak(
    state: RolloutState, device: DeviceRollout, seen: DeviceObservation | None, now: datetime
) -> Change:
    soak = format_duration(state.policy.soak)
    if seen is None or not seen.online or (seen.online_since or device.since) > device.since:
        return fail(device, now, Cause.OFFLINE, f"went offline during the {soak} soak")
    if seen.status != ApplyStatus.RUNNING or not _runs(seen, state):
        return fail(device, now, Cause.UNHEALTHY, f"{_health(seen)} during the {soak} soak")
    if now - device.since < state.policy.soak:
        return device, []
    done = replace(device, status=Status.SUCCEEDED, cause=None, reason="", since=now)
    message = f"{device.device_id} runs {state.ref}, healthy for {soak}"
    return done, [Emit(RolloutEventType.DEVICE_SUCCEEDED, message, device.device_id)]


def _agent_failed(
    state: RolloutState, device: DeviceRollout, report: DeviceObservation, now: datetime
) -> Change:
    reason = report.reason or "the agent reported a failure without a reason"
    retries = state.policy.max_retries
    if not report.retryable or device.attempts > retries:
        extra = f" (still failing after {device.attempts} attempts)" if report.retryable else ""
        return fail(device, now, Cause.AGENT, reason + extra)
    delay = min(state.policy.retry_backoff * 2 ** (device.attempts - 1), MAX_BACKOFF)
    reason = f"{reason}; retry {device.attempts} of {retries} in {format_duration(delay)}"
    retrying = replace(
        device, status=Status.PENDING, cause=Cause.RETRYING, reason=reason, retry_at=now + delay
    )
    message = f"{device.device_id} failed transiently: {reason}"
    return retrying, [Emit(RolloutEventType.DEVICE_RETRYING, message, device.device_id)]


def fail(device: DeviceRollout, now: datetime, cause: Cause, reason: str) -> Change:
    """The device failed for good in this rollout."""
    failed = replace(device, status=Status.FAILED, cause=cause, reason=reason, since=now)
    message = f"{device.device_id} failed: {reason}"
    return failed, [Emit(RolloutEventType.DEVICE_FAILED, message, device.device_id)]


def _runs(seen: DeviceObservation, state: RolloutState) -> bool:
    return (seen.bundle, seen.version) == (state.bundle, state.version)


def _ref(seen: DeviceObservation) -> str:
    return f"{seen.bundle}@{seen.version}" if seen.bundle else "nothing"


def _previous(device: DeviceRollout) -> tuple[str | None, str | None]:
    return device.previous_bundle, device.previous_version


def _health(seen: DeviceObservation) -> str:
    if seen.status == ApplyStatus.RUNNING:
        return f"switched to {_ref(seen)}"
    return f"became {seen.status}" + (f" ({seen.reason})" if seen.reason else "")


def _last(report: DeviceObservation | None, seen: DeviceObservation | None) -> str:
    if seen is None or not seen.online:
        return "the device is offline"
    if report is None:
        return "no report about this update yet"
    return f"last report: {report.status}" + (f" ({report.reason})" if report.reason else "")
