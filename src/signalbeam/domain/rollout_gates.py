"""Wave gates: when a wave may hand over to the next one, and when the rollout must halt.

Percentages count a wave's reachable devices: its members minus the skipped ones and the
failures an operator accepted by resuming after a halt. An absolute failure threshold counts
failures across the whole rollout ("halt after 3 failed devices"). A wave that can no longer
reach its success threshold halts the rollout too, rather than waiting forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signalbeam.domain.rollout_policy import Amount
from signalbeam.domain.rollout_state import DeviceRollout, DeviceRolloutStatus, RolloutState

Status = DeviceRolloutStatus


@dataclass(frozen=True)
class Tally:
    """How a set of devices stands, for the gates."""

    reachable: int
    succeeded: int
    failed: int
    open: int


def tally(devices: Sequence[DeviceRollout]) -> Tally:
    """Count the devices that matter to a gate."""
    counted = [d for d in devices if d.status is not Status.SKIPPED and not d.accepted]
    return Tally(
        reachable=len(counted),
        succeeded=sum(d.status is Status.SUCCEEDED for d in counted),
        failed=sum(d.status is Status.FAILED for d in counted),
        open=sum(d.in_flight for d in counted),
    )


def successes_needed(threshold: Amount, reachable: int) -> int:
    """How many of a wave's reachable devices must succeed (never more than there are)."""
    return min(threshold.of(reachable), reachable)


def wave_passed(state: RolloutState, wave: int) -> bool:
    """True when enough of the wave succeeded for the next wave to start."""
    counted = tally(state.in_wave(wave))
    return counted.succeeded >= successes_needed(state.policy.success_threshold, counted.reachable)


def halt_reason(state: RolloutState) -> str | None:
    """Why the rollout must halt now, or `None` while every gate holds."""
    return _total_failures(state) or _wave_failures(state) or _success_out_of_reach(state)


def _total_failures(state: RolloutState) -> str | None:
    threshold = state.policy.failure_threshold
    if threshold.percent:
        return None
    failed = tally(state.devices).failed
    if failed < threshold.of(0):
        return None
    return f"{failed} devices failed, reaching the failure threshold of {threshold}"


def _wave_failures(state: RolloutState) -> str | None:
    threshold = state.policy.failure_threshold
    if not threshold.percent:
        return None
    for wave in range(state.wave + 1):
        counted = tally(state.in_wave(wave))
        if counted.failed and counted.failed >= threshold.of(counted.reachable):
            return (
                f"{counted.failed} of {counted.reachable} devices in {_wave(state, wave)} failed, "
                f"reaching the failure threshold of {threshold}"
            )
    return None


def _success_out_of_reach(state: RolloutState) -> str | None:
    if state.wave < 0:
        return None
    counted = tally(state.in_wave(state.wave))
    needed = successes_needed(state.policy.success_threshold, counted.reachable)
    possible = counted.succeeded + counted.open
    if possible >= needed:
        return None
    return (
        f"only {possible} of {counted.reachable} devices in {_wave(state, state.wave)} can still "
        f"succeed; the success threshold of {state.policy.success_threshold} needs {needed}"
    )


def _wave(state: RolloutState, wave: int) -> str:
    return f"wave {wave + 1} of {state.last_wave + 1}"
