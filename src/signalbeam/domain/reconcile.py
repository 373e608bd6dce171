"""Reconcile planning: desired units + what runs now → the ordered actions that converge.

Pure: no I/O, no clock. The agent observes its drivers, asks `plan` what to do, and carries
the actions out in order. The order is the safety argument:

1. `PREPARE` every unit that must be (re)started: pull images, fetch artifacts. A failure
   here leaves the device exactly as it was.
2. For each unit, in the order the bundle lists them: `STOP` the old one if it is being
   replaced (same name, other spec or other kind), then `START` the new one. A unit that is
   unchanged but not running is simply started again.
3. `CHECK` every wanted unit: wait until its health check passes.
4. Only then `STOP` what the bundle no longer contains, so a failed update still has the old
   extras in place for the rollback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# States in which a unit needs no start: it runs, or its engine is already restarting it.
LIVE_STATES = frozenset({"running", "starting", "restarting"})


class Step(StrEnum):
    """What one action does."""

    PREPARE = "prepare"
    STOP = "stop"
    START = "start"
    CHECK = "check"


@dataclass(frozen=True)
class Wanted:
    """A unit of the desired bundle: its kind, name and spec fingerprint."""

    kind: str
    name: str
    fingerprint: str


@dataclass(frozen=True)
class Observed:
    """A managed unit as found on the device."""

    kind: str
    name: str
    fingerprint: str
    state: str


@dataclass(frozen=True)
class Action:
    """One step on one unit; `kind` says which driver carries it out."""

    step: Step
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.step.value} {self.kind} {self.name}"


def plan(wanted: Sequence[Wanted], observed: Sequence[Observed]) -> list[Action]:
    """The ordered actions that turn `observed` into `wanted` (see the module docstring)."""
    names = [unit.name for unit in wanted]
    if len(set(names)) != len(names):
        raise ValueError("wanted units must have unique names")
    found = {(unit.kind, unit.name): unit for unit in observed}
    prepare: list[Action] = []
    switch: list[Action] = []
    for unit in wanted:
        current = found.get((unit.kind, unit.name))
        # Whatever else holds this name goes first: the new unit may need its ports or files.
        strangers = [o for o in observed if o.name == unit.name and o.kind != unit.kind]
        switch += [Action(Step.STOP, other.kind, other.name) for other in strangers]
        if current is not None and current.fingerprint == unit.fingerprint:
            if current.state not in LIVE_STATES:
                switch.append(Action(Step.START, unit.kind, unit.name))
            continue
        prepare.append(Action(Step.PREPARE, unit.kind, unit.name))
        if current is not None:
            switch.append(Action(Step.STOP, unit.kind, unit.name))
        switch.append(Action(Step.START, unit.kind, unit.name))
    check = [Action(Step.CHECK, unit.kind, unit.name) for unit in wanted]
    keep = set(names)
    extras = sorted((unit for unit in observed if unit.name not in keep), key=_order)
    cleanup = [Action(Step.STOP, unit.kind, unit.name) for unit in extras]
    return [*prepare, *switch, *check, *cleanup]


def _order(unit: Observed) -> tuple[str, str]:
    return (unit.name, unit.kind)


def converged(wanted: Sequence[Wanted], observed: Sequence[Observed]) -> bool:
    """True when nothing needs starting, replacing or removing (only health checks remain)."""
    return all(action.step is Step.CHECK for action in plan(wanted, observed))
