"""A fake fleet and a fake clock that carry out what the rollout engine asks, for its tests.

Each fake device answers a new desired state the way its `behaviour` says, one step later,
like an agent that syncs between two engine steps. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from signalbeam.domain.rollout_policy import RolloutPolicy
from signalbeam.domain.rollout_state import (
    Action,
    Assign,
    DeviceObservation,
    DeviceRollout,
    Emit,
    Outcome,
    Revert,
    RolloutEventType,
    RolloutState,
    RolloutStatus,
)
from signalbeam.domain.rollouts import create_rollout, step

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
OLD = ("app", "1.0.0")
NEW = ("app", "2.0.0")

# Behaviours: how a device answers a new desired state.
OK = "ok"  # applies it and runs healthy
HANG = "hang"  # stays applying forever
TRANSIENT = "transient"  # fails retryably `transient_failures` times, then succeeds
BROKEN = "broken"  # fails for good


@dataclass
class FakeDevice:
    """One device: presence, desired state, and what its agent last reported."""

    online: bool = True
    desired_generation: int = 5
    desired: tuple[str | None, str | None] = OLD
    generation: int = 5
    status: str = "running"
    reason: str | None = None
    retryable: bool = False
    running: tuple[str | None, str | None] = OLD
    timezone: str | None = None
    online_since: datetime | None = None
    claimed_by: str | None = None
    cordoned: bool = False
    behaviour: str = OK
    transient_failures: int = 1
    failure: str = "container web exited with code 1"

    def observe(self) -> DeviceObservation:
        bundle, version = self.running
        return DeviceObservation(
            online=self.online,
            desired_generation=self.desired_generation,
            generation=self.generation,
            status=self.status,
            reason=self.reason,
            retryable=self.retryable,
            bundle=bundle,
            version=version,
            timezone=self.timezone,
            online_since=self.online_since,
            claimed_by=self.claimed_by,
            cordoned=self.cordoned,
        )

    def sync(self) -> None:
        """Answer the desired state, as the agent would on its next sync."""
        if not self.online or self.generation >= self.desired_generation:
            return
        self.generation = self.desired_generation
        if self.desired == OLD or self.behaviour == OK:
            self._run(self.desired)
        elif self.behaviour == HANG:
            self.status, self.reason = "applying", "pulling image app:2.0.0"
        elif self.behaviour == TRANSIENT and self.transient_failures > 0:
            self.transient_failures -= 1
            self._fail("artifact download cut after 3 MiB", retryable=True)
        elif self.behaviour == TRANSIENT:
            self._run(self.desired)
        else:
            self._fail(self.failure, retryable=False)

    def _run(self, ref: tuple[str | None, str | None]) -> None:
        self.status, self.reason, self.retryable, self.running = "running", None, False, ref

    def _fail(self, reason: str, *, retryable: bool) -> None:
        # The agent rolls back locally, so the old version keeps running.
        self.status, self.reason, self.retryable = "failed", reason, retryable


@dataclass
class Harness:
    """A rollout, its fleet and a clock; `tick` is one worker cycle."""

    state: RolloutState
    fleet: dict[str, FakeDevice]
    target: list[str]
    now: datetime = START
    log: list[Action] = field(default_factory=list)
    assigned: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, count: int, policy: RolloutPolicy | None = None, **device: Any) -> Harness:
        ids = [f"pi-{index:02d}" for index in range(1, count + 1)]
        fleet = {device_id: FakeDevice(**device) for device_id in ids}
        state = create_rollout("r1", *NEW, policy or RolloutPolicy(), START)
        return cls(state, fleet, ids)

    def tick(self, seconds: float = 10) -> Outcome:
        for device in self.fleet.values():
            device.sync()
        seen = {device_id: device.observe() for device_id, device in self.fleet.items()}
        outcome = step(self.state, self.now, self.target, seen)
        self.carry_out(outcome)
        self.now += timedelta(seconds=seconds)
        return outcome

    def carry_out(self, outcome: Outcome) -> None:
        self.state = outcome.state
        self.log += outcome.actions
        for action in outcome.actions:
            if isinstance(action, Assign):
                for device_id in action.device_ids:
                    self.assigned[device_id] = self.assigned.get(device_id, 0) + 1
                    self._desire(device_id, (action.bundle, action.version))
            elif isinstance(action, Revert):
                self._desire(action.device_id, (action.bundle, action.version))

    def run(
        self, until: Callable[[Harness], bool], *, limit: int = 2000, seconds: float = 10
    ) -> None:
        for _ in range(limit):
            if until(self):
                return
            self.tick(seconds)
        raise AssertionError(f"still {self.state.status} after {limit} steps")

    def finish(self, *, limit: int = 2000, seconds: float = 10) -> None:
        self.run(lambda h: not h.state.status.active, limit=limit, seconds=seconds)

    def status(self) -> RolloutStatus:
        """The rollout's status (a call, so type checkers do not pin it across ticks)."""
        return self.state.status

    def device(self, device_id: str) -> DeviceRollout:
        return next(d for d in self.state.devices if d.device_id == device_id)

    def statuses(self) -> dict[str, str]:
        return {d.device_id: d.status.value for d in self.state.devices}

    def events(self, kind: RolloutEventType) -> list[Emit]:
        return [a for a in self.log if isinstance(a, Emit) and a.type is kind]

    def reverts(self) -> list[Revert]:
        return [a for a in self.log if isinstance(a, Revert)]

    def _desire(self, device_id: str, ref: tuple[str | None, str | None]) -> None:
        device = self.fleet[device_id]
        device.desired_generation += 1
        device.desired = ref


def ids(devices: Sequence[DeviceRollout]) -> list[str]:
    return [device.device_id for device in devices]
