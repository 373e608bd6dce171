"""Reconcile planning: desired units + what runs now → the ordered actions that converge.

Pure: no I/O, no clock. The agent observes its drivers, asks `plan` what to do, and carries
the actions out in order. The order is the safety argument:

1. `PREPARE` every unit that must be (re)started: pull images, fetch artifacts. A failure
   here leaves the device exactly as it was.
2. For each unit, in the order the bundle lists them: a unit replaced `start-first` gets its
   new copy `START`ed beside the old one, which keeps serving; one replaced `stop-first`
   (or whose old copy is not running anyway, or is of another kind) has the old one
   `STOP`ped, then the new one `START`ed. A unit that is unchanged but not running is simply
   started again.
3. `CHECK` every wanted unit: wait until its health check passes.
4. Only then `RETIRE` the old copies of units replaced start-first and `STOP` what the bundle
   no longer contains, so a failed update still has the old copies and extras in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

# States in which a unit needs no start: it runs, or its engine is already restarting it.
LIVE_STATES = frozenset({"running", "starting", "restarting"})
START_FIRST, STOP_FIRST = "start-first", "stop-first"


class Step(StrEnum):
    """What one action does."""

    PREPARE = "prepare"
    STOP = "stop"
    START = "start"
    CHECK = "check"
    RETIRE = "retire"  # stop the old copy of a unit whose new copy started beside it


@dataclass(frozen=True)
class Wanted:
    """A unit of the desired bundle: its kind, name, spec fingerprint and update order."""

    kind: str
    name: str
    fingerprint: str
    order: str = STOP_FIRST


@dataclass(frozen=True)
class Observed:
    """A managed unit as found on the device."""

    kind: str
    name: str
    fingerprint: str
    state: str


@dataclass(frozen=True)
class Action:
    """One step on one unit; `kind` says which driver carries it out.

    A `START` that replaces a copy says in `order` how (`start-first`: beside the old copy;
    `stop-first`: after it stopped); a first start has no order.
    """

    step: Step
    kind: str
    name: str
    order: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        text = f"{self.step.value} {self.kind} {self.name}"
        return f"{text} ({self.order})" if self.order else text


def plan(wanted: Sequence[Wanted], observed: Sequence[Observed]) -> list[Action]:
    """The ordered actions that turn `observed` into `wanted` (see the module docstring)."""
    names = [unit.name for unit in wanted]
    if len(set(names)) != len(names):
        raise ValueError("wanted units must have unique names")
    found = {(unit.kind, unit.name): unit for unit in observed}
    prepare: list[Action] = []
    switch: list[Action] = []
    retire: list[Action] = []
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
        order = _replacement(unit, current, bool(strangers))
        if order == START_FIRST:
            retire.append(Action(Step.RETIRE, unit.kind, unit.name))
        elif current is not None:
            switch.append(Action(Step.STOP, unit.kind, unit.name))
        switch.append(Action(Step.START, unit.kind, unit.name, order))
    check = [Action(Step.CHECK, unit.kind, unit.name) for unit in wanted]
    keep = set(names)
    extras = sorted((unit for unit in observed if unit.name not in keep), key=_order)
    cleanup = [Action(Step.STOP, unit.kind, unit.name) for unit in extras]
    return [*prepare, *switch, *check, *retire, *cleanup]


def _replacement(unit: Wanted, current: Observed | None, strangers: bool) -> str | None:
    """How the new copy replaces what holds the name: None when nothing does."""
    if current is None:
        return STOP_FIRST if strangers else None
    # A copy that is not running serves nobody: there is nothing to keep up meanwhile.
    if unit.order == START_FIRST and current.state in LIVE_STATES:
        return START_FIRST
    return STOP_FIRST


def _order(unit: Observed) -> tuple[str, str]:
    return (unit.name, unit.kind)


def converged(wanted: Sequence[Wanted], observed: Sequence[Observed]) -> bool:
    """True when nothing needs starting, replacing or removing (only health checks remain)."""
    return all(action.step is Step.CHECK for action in plan(wanted, observed))
