"""Alert rules and incidents: what fires, on what, and how an incident moves between states.

Pure: the alerts worker feeds events in and stores what comes out. A rule watches one kind of
condition on the devices its scope selects (or on rollouts). Each condition a rule sees opens
at most one incident per subject (a device, or a rollout), which resolves itself when the
condition clears and opens again, the same incident, if the condition comes back soon after:
a flapping device makes one incident with a timeline, not fifty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from signalbeam.domain.durations import format_duration, parse_duration
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.selectors import parse_selector

RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(RULE_NAME_PATTERN)
# A condition that returns within this long after its incident resolved reopens that incident.
REOPEN_WINDOW = timedelta(minutes=10)
MAX_FOR = timedelta(days=7)


class RuleKind(StrEnum):
    """What a rule watches."""

    DEVICE_OFFLINE = "device_offline"
    UPDATE_FAILED = "update_failed"
    SAMPLES_DROPPED = "samples_dropped"
    ROLLOUT_HALTED = "rollout_halted"
    ROLLOUT_ROLLED_BACK = "rollout_rolled_back"
    METRIC_ABOVE = "metric_above"
    UNIT_DEGRADED = "unit_degraded"

    @property
    def per_rollout(self) -> bool:
        """Whether its incidents are one per rollout rather than one per device."""
        return self in (RuleKind.ROLLOUT_HALTED, RuleKind.ROLLOUT_ROLLED_BACK)

    @property
    def delayed(self) -> bool:
        """Whether it fires only once its condition has lasted `for`."""
        return self in (RuleKind.DEVICE_OFFLINE, RuleKind.METRIC_ABOVE)


# Metrics a rule can watch, their bounds, unit, and how far below the threshold a value must
# fall to count as normal again (so a value hovering at the threshold does not flap).
METRICS: dict[str, tuple[float, float, str, float]] = {
    "cpu": (0, 100, "%", 5),
    "memory": (0, 100, "%", 5),
    "disk": (0, 100, "%", 2),
    "load": (0, 1000, "", 0.5),
    "temperature": (-50, 150, "°C", 3),
}


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class IncidentState(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class RuleSpec:
    """A rule as a person wrote it, checked."""

    name: str
    kind: RuleKind
    severity: Severity = Severity.WARNING
    for_seconds: int = 0
    selector: str | None = None
    group: str | None = None
    enabled: bool = True
    metric: str | None = None
    threshold: float | None = None
    mount: str | None = None  # disk only: one mount point (every mount when None)

    def describe(self) -> str:
        """`device offline for 5m` and the like: what the rule fires on, for people."""
        text = _DESCRIPTIONS[self.kind]
        if self.kind is RuleKind.METRIC_ABOVE and self.metric and self.threshold is not None:
            where = f" {self.mount}" if self.mount else ""
            text = f"{self.metric}{where} above {self.threshold:g}{METRICS[self.metric][2]}"
        if self.kind.delayed:
            text += f" for {format_duration(timedelta(seconds=self.for_seconds))}"
        return text


_DESCRIPTIONS = {
    RuleKind.DEVICE_OFFLINE: "device offline",
    RuleKind.UPDATE_FAILED: "update failed",
    RuleKind.SAMPLES_DROPPED: "agent dropped queued samples",
    RuleKind.ROLLOUT_HALTED: "rollout halted",
    RuleKind.ROLLOUT_ROLLED_BACK: "rollout rolled back",
    RuleKind.METRIC_ABOVE: "metric above a threshold",
    RuleKind.UNIT_DEGRADED: "unit degraded or crash-looping",
}

# What a new tenant starts with, switched on.
DEFAULT_RULES = (
    RuleSpec("device-offline", RuleKind.DEVICE_OFFLINE, Severity.CRITICAL, for_seconds=300),
    RuleSpec("update-failed", RuleKind.UPDATE_FAILED, Severity.WARNING),
    RuleSpec("rollout-rolled-back", RuleKind.ROLLOUT_ROLLED_BACK, Severity.CRITICAL),
    RuleSpec(
        "disk-full",
        RuleKind.METRIC_ABOVE,
        Severity.WARNING,
        for_seconds=600,
        metric="disk",
        threshold=90,
    ),
)


def check_rule(
    name: str,
    kind: str,
    severity: str = Severity.WARNING.value,
    for_: str | None = None,
    selector: str | None = None,
    group: str | None = None,
    enabled: bool = True,
    metric: str | None = None,
    threshold: float | None = None,
    mount: str | None = None,
) -> RuleSpec:
    """A rule from its parts as a request carries them; InvalidInput names the field to fix."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f'rule name "{name[:80]}" is not valid: use lowercase letters, digits and "-" '
            "(up to 63, starting with a letter or digit)",
            field="name",
        )
    rule_kind = _choice(RuleKind, kind, "kind")
    rule_severity = _choice(Severity, severity, "severity")
    if selector is not None and group is not None:
        raise InvalidInput(
            "give a selector or a group for the rule's scope, not both", field="group"
        )
    canonical = str(parse_selector(selector)) if selector is not None else None
    _check_metric(rule_kind, metric, threshold, mount)
    return RuleSpec(
        name=name,
        kind=rule_kind,
        severity=rule_severity,
        for_seconds=_for_seconds(rule_kind, for_),
        selector=canonical or None,
        group=group,
        enabled=enabled,
        metric=metric,
        threshold=threshold,
        mount=mount,
    )


def _check_metric(
    kind: RuleKind, metric: str | None, threshold: float | None, mount: str | None
) -> None:
    if kind is not RuleKind.METRIC_ABOVE:
        for field, value in (("metric", metric), ("threshold", threshold), ("mount", mount)):
            if value is not None:
                raise InvalidInput(f"{field} is for metric_above rules only", field=field)
        return
    if metric not in METRICS:
        known = ", ".join(METRICS)
        raise InvalidInput(f"metric must be one of: {known}", field="metric")
    low, high, unit, _ = METRICS[metric]
    if threshold is None or not low <= threshold <= high:
        raise InvalidInput(
            f"threshold for {metric} must be between {low:g} and {high:g}{unit}", field="threshold"
        )
    if mount is not None and (metric != "disk" or not mount.startswith("/")):
        raise InvalidInput("mount is a disk's mount point, such as /data", field="mount")


@dataclass(frozen=True)
class Readings:
    """What one heartbeat measured, as metric rules read it (None: not measured)."""

    cpu: float | None = None
    memory: float | None = None
    disks: tuple[tuple[str, float], ...] = ()
    load: float | None = None
    temperature: float | None = None

    def value(self, metric: str, mount: str | None) -> float | None:
        if metric == "disk":
            chosen = [p for m, p in self.disks if mount is None or m == mount]
            return max(chosen, default=None)
        found: float | None = getattr(self, metric)
        return found


def crossing(rule: RuleSpec, readings: Readings, above: bool) -> Change | None:
    """Whether a heartbeat takes the rule's metric over its threshold, or back to normal."""
    assert rule.metric is not None and rule.threshold is not None
    value = readings.value(rule.metric, rule.mount)
    if value is None:
        return None
    if not above and value > rule.threshold:
        return Change.BEGAN
    if above and value <= rule.threshold - METRICS[rule.metric][3]:
        return Change.ENDED
    return None


E = TypeVar("E", bound=StrEnum)


def _choice(enum: type[E], value: str, field: str) -> E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(member.value for member in enum)
        raise InvalidInput(
            f"unknown {field} {value[:40]!r}; use one of: {known}", field=field
        ) from None


def _for_seconds(kind: RuleKind, text: str | None) -> int:
    if not kind.delayed:
        if text not in (None, "", "0s"):
            raise InvalidInput(f"a {kind.value} rule fires at once; leave out `for`", field="for")
        return 0
    if text is None:
        raise InvalidInput(
            f"a {kind.value} rule needs `for`, how long the condition must last (e.g. 5m)",
            field="for",
        )
    value = parse_duration(text, field="for")
    if not timedelta(0) < value <= MAX_FOR:
        raise InvalidInput("`for` must be more than 0s and at most 7d", field="for")
    return int(value.total_seconds())


class Change(StrEnum):
    """What an event means for a rule's condition on one subject."""

    BEGAN = "began"  # the condition holds from now (it fires now, or after `for`)
    ENDED = "ended"  # the condition no longer holds


# Event type → (rule kind, what it does to that kind's condition).
_SIGNALS: dict[str, tuple[RuleKind, Change]] = {
    # The agent says so when a unit of a running bundle fails its health or crash-loops.
    "agent.degraded": (RuleKind.UNIT_DEGRADED, Change.BEGAN),
    "agent.recovered": (RuleKind.UNIT_DEGRADED, Change.ENDED),
    "device.offline": (RuleKind.DEVICE_OFFLINE, Change.BEGAN),
    "device.online": (RuleKind.DEVICE_OFFLINE, Change.ENDED),
    "device.decommissioned": (RuleKind.DEVICE_OFFLINE, Change.ENDED),
    "agent.update_failed": (RuleKind.UPDATE_FAILED, Change.BEGAN),
    "agent.update_applied": (RuleKind.UPDATE_FAILED, Change.ENDED),
    "device.samples_dropped": (RuleKind.SAMPLES_DROPPED, Change.BEGAN),
    "rollout.halted": (RuleKind.ROLLOUT_HALTED, Change.BEGAN),
    "rollout.resumed": (RuleKind.ROLLOUT_HALTED, Change.ENDED),
    "rollout.cancelled": (RuleKind.ROLLOUT_HALTED, Change.ENDED),
    "rollout.completed": (RuleKind.ROLLOUT_HALTED, Change.ENDED),
    "rollout.rolled_back": (RuleKind.ROLLOUT_ROLLED_BACK, Change.BEGAN),
    # Written by ingest for one rule each (data.rule_id) when a heartbeat crosses its threshold.
    "device.metric_above": (RuleKind.METRIC_ABOVE, Change.BEGAN),
    "device.metric_normal": (RuleKind.METRIC_ABOVE, Change.ENDED),
}
WATCHED_EVENTS = tuple(_SIGNALS)
# A rolled-back rollout also stops being halted: its halt incident resolves; a bundle applied
# afresh and healthy ends a degraded one.
_ALSO = {
    "rollout.rolled_back": (RuleKind.ROLLOUT_HALTED, Change.ENDED),
    "agent.update_applied": (RuleKind.UNIT_DEGRADED, Change.ENDED),
}

# Changes a person made that may explain what broke: shown as "what changed before it".
CAUSES = (
    "device.desired_state_changed",
    "device.labels_changed",
    "device.groups_changed",
    "rollout.wave_started",
    "rollout.created",
    "device.drained",
    "device.reboot_requested",
)


@dataclass(frozen=True)
class Signal:
    """An event seen as a condition beginning or ending for one subject of one rule kind."""

    kind: RuleKind
    change: Change
    subject: str  # a device id, or `rollout/<id>`
    at: datetime
    message: str
    since: datetime  # when the condition really began (a device's last sync when it went offline)
    rule_id: int | None = None  # for one rule only (a metric crossing its threshold)


def signals(
    event_type: str,
    device_id: str | None,
    data: dict[str, Any],
    message: str,
    at: datetime,
) -> list[Signal]:
    """What one event means for alert conditions (nothing for most events)."""
    found = [entry for entry in (_SIGNALS.get(event_type), _ALSO.get(event_type)) if entry]
    out = []
    for kind, change in found:
        subject = _subject(kind, device_id, data)
        if subject is not None:
            rule_id = data.get("rule_id") if kind is RuleKind.METRIC_ABOVE else None
            since = _since(data, at)
            out.append(Signal(kind, change, subject, at, message, since, _int(rule_id)))
    return out


def _subject(kind: RuleKind, device_id: str | None, data: dict[str, Any]) -> str | None:
    if kind.per_rollout:
        rollout = data.get("rollout_id")
        return f"rollout/{rollout}" if rollout is not None else None
    return device_id


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _since(data: dict[str, Any], at: datetime) -> datetime:
    seen = data.get("last_seen_at")
    if isinstance(seen, str):
        try:
            return datetime.fromisoformat(seen)
        except ValueError:
            return at
    return at


class Step(StrEnum):
    """What to do with a subject's incident, given a signal."""

    OPEN = "open"  # a new incident
    REOPEN = "reopen"  # the same incident, resolved a short while ago, fires again
    WAIT = "wait"  # the condition began; fire once it has lasted `for`
    RESOLVE = "resolve"
    CANCEL = "cancel"  # a condition still waiting for `for` ended: nothing to tell anyone
    NOTHING = "nothing"


@dataclass(frozen=True)
class Current:
    """What is stored for one (rule, subject): its latest incident and any waiting condition."""

    state: IncidentState | None = None
    resolved_at: datetime | None = None
    waiting: bool = False


def step(rule: RuleSpec, current: Current, change: Change, now: datetime) -> Step:
    """The next step for one rule and subject when its condition begins or ends."""
    if change is Change.ENDED:
        if current.state in (IncidentState.FIRING, IncidentState.ACKNOWLEDGED):
            return Step.RESOLVE
        return Step.CANCEL if current.waiting else Step.NOTHING
    if current.state in (IncidentState.FIRING, IncidentState.ACKNOWLEDGED):
        return Step.NOTHING  # already open: never a second incident
    if rule.kind.delayed and rule.for_seconds > 0:
        return Step.NOTHING if current.waiting else Step.WAIT
    return fire(current, now)


def fire(current: Current, now: datetime) -> Step:
    """A condition that has lasted long enough: reopen a recent incident or open a new one."""
    recent = current.resolved_at is not None and now - current.resolved_at <= REOPEN_WINDOW
    return Step.REOPEN if current.state is IncidentState.RESOLVED and recent else Step.OPEN


def due(rule: RuleSpec, since: datetime) -> datetime:
    """When a delayed condition that began at `since` fires if it still holds."""
    return since + timedelta(seconds=rule.for_seconds)


def title(rule: RuleSpec, subject: str) -> str:
    """The incident's one-line summary."""
    what = subject.replace("rollout/", "rollout ")
    return f"{what}: {rule.describe()}"
