"""Alert rules: checked as written; incidents open once, resolve, and reopen when they flap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from signalbeam.domain.alerts import (
    REOPEN_WINDOW,
    Change,
    Current,
    IncidentState,
    Readings,
    RuleKind,
    RuleSpec,
    Step,
    check_rule,
    crossing,
    due,
    signals,
    step,
)
from signalbeam.domain.errors import InvalidInput

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OFFLINE = RuleSpec("offline", RuleKind.DEVICE_OFFLINE, for_seconds=300)
FAILED = RuleSpec("failed", RuleKind.UPDATE_FAILED)


def test_a_rule_is_checked_and_each_mistake_names_its_field() -> None:
    rule = check_rule("kiosk-offline", "device_offline", "critical", "5m", "role = kiosk")
    assert (rule.for_seconds, rule.selector, rule.describe()) == (
        300,
        "role=kiosk",
        "device offline for 5m",
    )
    mistakes: dict[str, Callable[[], RuleSpec]] = {
        "name": lambda: check_rule("Kiosk Offline", "device_offline", for_="5m"),
        "kind": lambda: check_rule("x", "cpu_high"),
        "severity": lambda: check_rule("x", "update_failed", "urgent"),
        "for": lambda: check_rule("x", "device_offline"),
        "group": lambda: check_rule("x", "update_failed", selector="a=b", group="g"),
    }
    for field, make in mistakes.items():
        with pytest.raises(InvalidInput) as refused:
            make()
        assert refused.value.field == field, refused.value.detail
    with pytest.raises(InvalidInput, match="fires at once"):
        check_rule("x", "update_failed", for_="5m")
    with pytest.raises(InvalidInput, match="at most 7d"):
        check_rule("x", "device_offline", for_="8d")


def test_events_become_conditions_of_the_kind_they_concern() -> None:
    seen = (NOW - timedelta(seconds=45)).isoformat()
    (offline,) = signals("device.offline", "pi-7", {"last_seen_at": seen}, "offline", NOW)
    assert (offline.kind, offline.change, offline.subject) == (
        RuleKind.DEVICE_OFFLINE,
        Change.BEGAN,
        "pi-7",
    )
    assert offline.since == NOW - timedelta(seconds=45)  # offline since its last sync
    rolled = signals("rollout.rolled_back", None, {"rollout_id": 4}, "rolled back", NOW)
    assert {(s.kind, s.change, s.subject) for s in rolled} == {
        (RuleKind.ROLLOUT_ROLLED_BACK, Change.BEGAN, "rollout/4"),
        (RuleKind.ROLLOUT_HALTED, Change.ENDED, "rollout/4"),
    }
    assert signals("device.labels_changed", "pi-7", {}, "labels", NOW) == []


def test_a_condition_opens_one_incident_and_waits_first_when_it_must_last() -> None:
    assert step(FAILED, Current(), Change.BEGAN, NOW) is Step.OPEN
    firing = Current(IncidentState.FIRING)
    assert step(FAILED, firing, Change.BEGAN, NOW) is Step.NOTHING  # never a duplicate
    assert step(FAILED, Current(IncidentState.ACKNOWLEDGED), Change.BEGAN, NOW) is Step.NOTHING
    assert step(OFFLINE, Current(), Change.BEGAN, NOW) is Step.WAIT
    assert step(OFFLINE, Current(waiting=True), Change.BEGAN, NOW) is Step.NOTHING
    assert due(OFFLINE, NOW) == NOW + timedelta(minutes=5)


def test_it_resolves_when_the_condition_ends_and_reopens_if_it_flaps_soon_after() -> None:
    assert step(OFFLINE, Current(IncidentState.FIRING), Change.ENDED, NOW) is Step.RESOLVE
    assert step(OFFLINE, Current(waiting=True), Change.ENDED, NOW) is Step.CANCEL
    assert step(OFFLINE, Current(), Change.ENDED, NOW) is Step.NOTHING
    recently = Current(IncidentState.RESOLVED, resolved_at=NOW - REOPEN_WINDOW)
    assert step(FAILED, recently, Change.BEGAN, NOW) is Step.REOPEN
    long_ago = Current(IncidentState.RESOLVED, resolved_at=NOW - REOPEN_WINDOW * 2)
    assert step(FAILED, long_ago, Change.BEGAN, NOW) is Step.OPEN


def test_a_metric_crosses_its_threshold_once_and_comes_back_below_a_margin() -> None:
    disk = check_rule(
        "data-full", "metric_above", for_="10m", metric="disk", threshold=90, mount="/data"
    )
    assert disk.describe() == "disk /data above 90% for 10m"
    full = Readings(disks=(("/", 97.0), ("/data", 91.0)))
    assert crossing(disk, full, above=False) is Change.BEGAN
    assert crossing(disk, full, above=True) is None  # already over: no second crossing
    hovering = Readings(disks=(("/data", 89.0),))
    assert crossing(disk, hovering, above=True) is None  # within the 2-point margin
    assert crossing(disk, Readings(disks=(("/data", 88.0),)), above=True) is Change.ENDED
    assert crossing(disk, Readings(disks=(("/", 99.0),)), above=False) is None  # another mount
    cpu = check_rule("hot", "metric_above", for_="1m", metric="cpu", threshold=80)
    assert crossing(cpu, Readings(), above=False) is None  # not measured: nothing to say
