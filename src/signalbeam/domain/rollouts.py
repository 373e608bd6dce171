"""The rollout engine: a pure state machine that moves a target to a bundle version in waves.

No I/O and no clock: every function takes the time it should act at, so tests drive it with a
fake clock and a worker with the real one.

How a worker drives it
----------------------
A rollout is one `RolloutState`, stored as `state.to_dict()` (plain JSON) and loaded with
`RolloutState.from_dict`. `create_rollout` makes the state once the service has checked the
policy (`parse_policy`) and exclusivity (`claims` of the other active rollouts, then
`ensure_exclusive`). Then, every few seconds, for each active rollout (`status.active`):

1. Resolve the target (group, selector or device list) to device ids in a stable order, for
   instance by enrollment time: membership is decided when a wave starts, so devices that join
   later land in later waves.
2. Build a `DeviceObservation` for every device of the target and of `state.devices` (a device
   missing from the mapping counts as offline): presence, current desired generation, last
   reported state, timezone, and `claimed_by` if another active rollout already holds it.
3. Call `step(state, now, target, observations)` and, in one transaction, store the new state
   and carry out its actions in order: `Assign` sets the rollout's bundle version as desired
   state (a new generation per device), `Revert` sets the previous one back (`None`: clear the
   desired state), `Emit` records an event. `record_generations` may then store the exact
   generations `Assign` produced; without it the engine assumes "current + 1", which is right
   as long as nothing else assigns the device in between.

Operator requests go through `pause`, `resume`, `cancel` and `rollback` the same way; `plan`
is the dry run. Reports are snapshots: a device that goes offline and back between two steps
is only noticed through `online_since`, so steps should come at least as often as heartbeats.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from signalbeam.domain.errors import Conflict
from signalbeam.domain.maintenance import window_open
from signalbeam.domain.rollout_controls import (
    cancel,
    describe_failures,
    failures,
    halt,
    pause,
    resume,
    rollback,
)
from signalbeam.domain.rollout_devices import Change, assign, hold_offline, revive, skip, track
from signalbeam.domain.rollout_gates import halt_reason, wave_passed
from signalbeam.domain.rollout_policy import RolloutPolicy, parse_policy, plan_waves, wave_quota
from signalbeam.domain.rollout_state import (
    Action,
    Assign,
    Cause,
    DeviceObservation,
    DeviceRollout,
    DeviceRolloutStatus,
    Emit,
    Outcome,
    Revert,
    RolloutEventType,
    RolloutState,
    RolloutStatus,
)

# One import point for the worker, the services and the API: the engine and its vocabulary.
__all__ = [
    "Action",
    "Assign",
    "Cause",
    "DeviceObservation",
    "DeviceRollout",
    "DeviceRolloutStatus",
    "Emit",
    "Outcome",
    "Revert",
    "RolloutEventType",
    "RolloutPlan",
    "RolloutPolicy",
    "RolloutState",
    "RolloutStatus",
    "cancel",
    "changed_devices",
    "claims",
    "counts",
    "create_rollout",
    "describe_failures",
    "ensure_exclusive",
    "failures",
    "parse_policy",
    "pause",
    "plan",
    "record_generations",
    "resume",
    "rollback",
    "step",
]

Status = DeviceRolloutStatus


def create_rollout(
    rollout_id: str, bundle: str, version: str, policy: RolloutPolicy, now: datetime
) -> RolloutState:
    """A new running rollout; its first `step` starts the first wave."""
    _require_aware(now)
    return RolloutState(rollout_id, bundle, version, policy, created_at=now, updated_at=now)


def step(
    state: RolloutState,
    now: datetime,
    target: Sequence[str],
    observations: Mapping[str, DeviceObservation],
) -> Outcome:
    """Advance the rollout to `now`: track devices, apply the gates, start waves and devices.

    Paused and halted rollouts still track devices that are updating, so their outcome is
    known on resume; finished rollouts are returned unchanged.
    """
    _require_aware(now)
    if not state.status.active:
        return Outcome(state)
    tick = _Tick(state, now, observations, tuple(dict.fromkeys(target)))
    tick.change(lambda device: track(tick.state, device, tick.seen(device), now))
    if state.status is RolloutStatus.RUNNING:
        _run(tick)
    return tick.outcome(state)


@dataclass
class _Tick:
    """The working state of one `step`: the rollout so far and the actions it produced."""

    state: RolloutState
    now: datetime
    observations: Mapping[str, DeviceObservation]
    target: tuple[str, ...]
    actions: list[Action] = field(default_factory=list)
    members: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.members = frozenset(self.target)

    def seen(self, device: DeviceRollout) -> DeviceObservation | None:
        return self.observations.get(device.device_id)

    def change(self, update: Callable[[DeviceRollout], Change]) -> None:
        changes = [update(device) for device in self.state.devices]
        self.state = replace(self.state, devices=tuple(device for device, _ in changes))
        self.actions += [event for _, events in changes for event in events]

    def apply(self, outcome: Outcome) -> None:
        self.state = outcome.state
        self.actions += outcome.actions

    def outcome(self, before: RolloutState) -> Outcome:
        # Only a real change moves `updated_at`, so a worker can skip writing idle rollouts.
        changed = self.state != before
        state = replace(self.state, updated_at=self.now) if changed else self.state
        return Outcome(state, tuple(self.actions))


def _run(tick: _Tick) -> None:
    # Devices come back, or drop out, before the gates look: both change what a wave can reach.
    tick.change(
        lambda device: revive(device, tick.seen(device), device.device_id in tick.members, tick.now)
    )
    tick.change(lambda device: _hold(tick, device))
    why = halt_reason(tick.state)
    if why is not None:
        tick.apply(halt(tick.state, tick.now, why))
        return
    _advance_waves(tick)
    _start_devices(tick)
    if _finished(tick.state):
        tick.apply(_complete(tick.state, tick.now))


def _advance_waves(tick: _Tick) -> None:
    """Start every wave whose predecessor passed its gate (empty waves pass at once)."""
    state = tick.state
    while state.wave < state.last_wave and (state.wave < 0 or wave_passed(state, state.wave)):
        state = _start_wave(tick, state, state.wave + 1)
    if state.wave == state.last_wave and state.policy.dynamic:
        # A dynamic rollout keeps taking devices that join the target into its last wave.
        state = _join(state, state.last_wave, _newcomers(state, tick.target), tick.now)
    tick.state = state


def _start_wave(tick: _Tick, state: RolloutState, wave: int) -> RolloutState:
    fresh = _newcomers(state, tick.target)
    taken = len(state.devices)
    count = wave_quota(state.policy.waves, wave, taken + len(fresh), taken)
    joined = _join(replace(state, wave=wave), wave, fresh[:count], tick.now)
    if count:
        names = ", ".join(fresh[:count][:5]) + (" ..." if count > 5 else "")
        which = f"wave {wave + 1} of {state.last_wave + 1}"
        message = f"{state.label}: {which} started with {count} devices ({names})"
        tick.actions.append(Emit(RolloutEventType.WAVE_STARTED, message))
    return joined


def _newcomers(state: RolloutState, target: Sequence[str]) -> list[str]:
    known = {device.device_id for device in state.devices}
    return [device_id for device_id in target if device_id not in known]


def _join(state: RolloutState, wave: int, device_ids: Sequence[str], now: datetime) -> RolloutState:
    added = tuple(DeviceRollout(device_id, wave, now) for device_id in device_ids)
    return replace(state, devices=state.devices + added) if added else state


def _start_devices(tick: _Tick) -> None:
    """Hold pending devices that cannot go (new waves too), then assign those that can."""
    tick.change(lambda device: _hold(tick, device))
    ready = [device for device in tick.state.devices if _ready(tick, device)]
    chosen = {device.device_id for device in ready[: _free_slots(tick.state)]}
    if not chosen:
        return
    tick.change(
        lambda device: (
            (assign(tick.state, device, tick.observations[device.device_id], tick.now), [])
            if device.device_id in chosen
            else (device, [])
        )
    )
    started = tuple(device.device_id for device in tick.state.devices if device.device_id in chosen)
    tick.actions.append(Assign(started, tick.state.bundle, tick.state.version))


def _hold(tick: _Tick, device: DeviceRollout) -> Change:
    """A pending device that cannot start at all now is skipped or waits: gone, held, offline."""
    if device.status is not Status.PENDING:
        return device, []
    seen = tick.seen(device)
    if device.device_id not in tick.members:
        return skip(device, tick.now, Cause.LEFT_TARGET, "left the target before it was updated")
    if seen is not None and seen.claimed_by:
        return skip(device, tick.now, Cause.BUSY, f"held by {seen.claimed_by}")
    if seen is not None and seen.cordoned:
        return skip(device, tick.now, Cause.CORDONED, "cordoned (uncordon it to include it)")
    if seen is None or not seen.online:
        return hold_offline(tick.state, device, tick.now)
    return replace(device, offline_since=None), []


def _ready(tick: _Tick, device: DeviceRollout) -> bool:
    """An online pending device starts once its backoff passed and its window is open."""
    seen = tick.seen(device)
    if device.status is not Status.PENDING or seen is None or not seen.online:
        return False
    if device.retry_at is not None and device.retry_at > tick.now:
        return False
    return window_open(tick.state.policy.windows, tick.now, seen.timezone)


def _free_slots(state: RolloutState) -> int:
    limit = state.policy.max_parallel
    if limit is None:
        return len(state.devices)
    return max(0, limit - sum(device.status is Status.UPDATING for device in state.devices))


def _finished(state: RolloutState) -> bool:
    return (
        state.wave == state.last_wave
        and not state.policy.dynamic
        and wave_passed(state, state.wave)
        and not any(device.in_flight for device in state.devices)
    )


def _complete(state: RolloutState, now: datetime) -> Outcome:
    tally = counts(state)
    summary = (
        f"{tally[Status.SUCCEEDED]} devices run {state.ref}; "
        f"{tally[Status.FAILED]} failed, {tally[Status.SKIPPED]} skipped"
    )
    done = replace(state, status=RolloutStatus.COMPLETED, reason=summary, updated_at=now)
    return Outcome(done, (Emit(RolloutEventType.COMPLETED, f"{state.label} completed: {summary}"),))


def counts(state: RolloutState) -> dict[DeviceRolloutStatus, int]:
    """How many devices are in each status (every status present, zero or not)."""
    tally = dict.fromkeys(DeviceRolloutStatus, 0)
    for device in state.devices:
        tally[device.status] += 1
    return tally


def changed_devices(state: RolloutState) -> list[str]:
    """Devices whose desired state this rollout changed and did not revert yet."""
    return [device.device_id for device in state.devices if device.changed and not device.reverted]


def record_generations(state: RolloutState, generations: Mapping[str, int]) -> RolloutState:
    """Store the exact desired generations an `Assign` produced (reports below them are old)."""
    devices = tuple(
        replace(device, generation=generations[device.device_id])
        if device.device_id in generations and device.status is Status.UPDATING
        else device
        for device in state.devices
    )
    return replace(state, devices=devices)


@dataclass(frozen=True)
class RolloutPlan:
    """A dry run: which devices each wave would take now, and which of them are offline."""

    waves: tuple[tuple[str, ...], ...]
    offline: tuple[str, ...]


def plan(
    policy: RolloutPolicy, target: Sequence[str], observations: Mapping[str, DeviceObservation]
) -> RolloutPlan:
    """What a rollout would do with the target as it is now, changing nothing.

    Later waves may differ when the target changes before they start.
    """
    waves = tuple(tuple(wave) for wave in plan_waves(target, policy.waves))
    offline = tuple(
        device_id
        for wave in waves
        for device_id in wave
        if device_id not in observations or not observations[device_id].online
    )
    return RolloutPlan(waves, offline)


def claims(state: RolloutState, target: Collection[str] = ()) -> dict[str, str]:
    """The devices an active rollout holds, each mapped to the rollout's label.

    Pass its current target too while it may still take devices (waves left, or dynamic).
    """
    if not state.status.active:
        return {}
    held = [device.device_id for device in state.devices if device.cause is not Cause.BUSY]
    may_grow = state.wave < state.last_wave or state.policy.dynamic
    return dict.fromkeys([*held, *(target if may_grow else ())], state.label)


def ensure_exclusive(device_ids: Iterable[str], held: Mapping[str, str]) -> None:
    """Refuse a rollout whose target overlaps an active rollout, naming the first clash."""
    clashes = [device_id for device_id in dict.fromkeys(device_ids) if device_id in held]
    if not clashes:
        return
    first = clashes[0]
    many = len(clashes) > 1
    who = f"devices {first} and {len(clashes) - 1} more are" if many else f"device {first} is"
    raise Conflict(
        f"{who} already in active {held[first]}; only one active rollout may target a device, "
        "so wait for it to finish, cancel it, or leave these devices out of the target",
        field="target",
    )


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("rollout times must be timezone-aware (UTC)")
