"""The rollout engine driven by a fake fleet and a fake clock: waves, gates, soak, timeouts,
offline devices, retries, limits, windows, dynamic membership and the acceptance scenario."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signalbeam.domain.rollout_policy import parse_policy
from signalbeam.domain.rollout_state import (
    Action,
    Assign,
    Cause,
    DeviceObservation,
    DeviceRolloutStatus,
    Emit,
    Revert,
    RolloutEventType,
    RolloutStatus,
)
from signalbeam.domain.rollouts import (
    counts,
    create_rollout,
    failures,
    plan,
    record_generations,
    step,
)
from tests.domain.rollout_harness import (
    BROKEN,
    HANG,
    NEW,
    OLD,
    START,
    TRANSIENT,
    Harness,
    ids,
)

Status = DeviceRolloutStatus
Event = RolloutEventType


def assigns(actions: Sequence[Action]) -> list[Assign]:
    return [action for action in actions if isinstance(action, Assign)]


# Waves and the happy path


def test_the_first_step_starts_the_canary() -> None:
    h = Harness.make(10)
    outcome = h.tick()
    assert assigns(outcome.actions) == [Assign(("pi-01",), *NEW)]
    (started,) = [a for a in outcome.actions if isinstance(a, Emit)]
    assert started.type is Event.WAVE_STARTED
    assert "wave 1 of 4 started with 1 devices (pi-01)" in started.message
    canary = h.device("pi-01")
    assert (canary.status, canary.generation, canary.attempts) == (Status.UPDATING, 6, 1)
    assert (canary.previous_bundle, canary.previous_version, canary.changed) == (*OLD, True)
    assert h.state.updated_at == START


def test_a_device_counts_only_after_the_soak() -> None:
    h = Harness.make(10)
    h.tick()  # 12:00:00 assign
    h.tick()  # 12:00:10 healthy report: soak starts
    assert h.device("pi-01").status is Status.SOAKING
    h.run(lambda h: h.now == START + timedelta(seconds=70))
    assert h.device("pi-01").status is Status.SOAKING
    assert h.assigned == {"pi-01": 1}  # the next wave waits for the soak
    outcome = h.tick()  # 12:01:10: healthy for 60 s
    assert h.device("pi-01").status is Status.SUCCEEDED
    assert assigns(outcome.actions) == [Assign(("pi-02",), *NEW)]
    assert any(a.type is Event.DEVICE_SUCCEEDED for a in outcome.actions if isinstance(a, Emit))


def test_ten_healthy_devices_complete_in_four_waves() -> None:
    h = Harness.make(10)
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert set(h.statuses().values()) == {"succeeded"}
    assert h.assigned == dict.fromkeys(h.target, 1)
    assert [len(h.state.in_wave(wave)) for wave in range(4)] == [1, 1, 3, 5]
    assert h.state.reason == "10 devices run app@2.0.0; 0 failed, 0 skipped"
    assert len(h.events(Event.WAVE_STARTED)) == 4
    assert len(h.events(Event.COMPLETED)) == 1
    assert h.reverts() == []


def test_one_device_skips_the_empty_waves() -> None:
    h = Harness.make(1)
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert len(h.events(Event.WAVE_STARTED)) == 1


def test_an_empty_target_completes_at_once() -> None:
    h = Harness.make(0)
    h.tick()
    assert h.status() is RolloutStatus.COMPLETED
    assert h.state.reason == "0 devices run app@2.0.0; 0 failed, 0 skipped"


def test_finished_rollouts_do_not_move() -> None:
    h = Harness.make(2)
    h.finish()
    done = h.state
    outcome = h.tick()
    assert outcome.state is done and outcome.actions == ()


def test_an_idle_step_leaves_updated_at_alone() -> None:
    h = Harness.make(1, parse_policy(offline="wait"), online=False)
    h.tick()
    first = h.state
    h.tick()
    assert h.state == first and h.state.updated_at == START


def test_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_rollout("r1", *NEW, parse_policy(), datetime(2026, 3, 2, 12))


# Reports: generations, soak, timeouts


def fresh_updating(generation: int = 6) -> Harness:
    h = Harness.make(1, parse_policy(waves="100%"))
    h.tick()
    h.state = record_generations(h.state, {"pi-01": generation})
    return h


def seen(**fields: Any) -> dict[str, DeviceObservation]:
    base = DeviceObservation(online=True, desired_generation=6, bundle="app", version="1.0.0")
    return {"pi-01": replace(base, **fields)}


def test_reports_about_an_older_generation_are_ignored() -> None:
    h = fresh_updating(generation=42)
    old_failure = seen(generation=41, status="failed", reason="older bundle broke")
    outcome = step(h.state, h.now, h.target, old_failure)
    assert outcome.state.devices[0].status is Status.UPDATING
    healthy = seen(generation=42, status="running", version="2.0.0")
    assert step(h.state, h.now, h.target, healthy).state.devices[0].status is Status.SOAKING


def test_running_another_version_at_the_new_generation_fails() -> None:
    h = fresh_updating()
    outcome = step(h.state, h.now, h.target, seen(generation=6, status="running"))
    device = outcome.state.devices[0]
    assert (device.status, device.cause) == (Status.FAILED, Cause.AGENT)
    assert device.reason == "runs app@1.0.0 instead of app@2.0.0"


def test_going_offline_during_the_soak_fails_the_device() -> None:
    h = Harness.make(2, parse_policy(waves="100%", on_failure="pause"))
    h.tick()
    h.tick()
    h.fleet["pi-01"].online = False
    h.tick()
    device = h.device("pi-01")
    assert (device.status, device.cause) == (Status.FAILED, Cause.OFFLINE)
    assert device.reason == "went offline during the 1m soak"
    assert h.device("pi-02").status is Status.SOAKING


def test_an_outage_between_two_steps_is_noticed_through_online_since() -> None:
    h = Harness.make(1, parse_policy(waves="100%", on_failure="pause"))
    h.tick()
    h.tick()
    h.fleet["pi-01"].online_since = h.now - timedelta(seconds=1)
    h.tick()
    assert h.device("pi-01").cause is Cause.OFFLINE


def test_becoming_unhealthy_during_the_soak_fails_the_device() -> None:
    h = Harness.make(1, parse_policy(waves="100%", on_failure="pause"))
    h.tick()
    h.tick()
    h.fleet["pi-01"].status = "degraded"
    h.fleet["pi-01"].reason = "container web: health check failed 3 times"
    h.tick()
    device = h.device("pi-01")
    assert (device.status, device.cause) == (Status.FAILED, Cause.UNHEALTHY)
    assert device.reason == (
        "became degraded (container web: health check failed 3 times) during the 1m soak"
    )


def test_a_zero_soak_succeeds_on_the_first_healthy_report() -> None:
    h = Harness.make(1, parse_policy(waves="100%", soak="0s"))
    h.tick()
    h.tick()
    assert h.status() is RolloutStatus.COMPLETED


def test_a_device_that_never_finishes_times_out() -> None:
    h = Harness.make(1, parse_policy(waves="100%", apply_timeout="5m"), behaviour=HANG)
    h.run(lambda h: h.now == START + timedelta(minutes=5))
    assert h.device("pi-01").status is Status.UPDATING
    h.tick()
    device = h.device("pi-01")
    assert (device.status, device.cause) == (Status.FAILED, Cause.TIMEOUT)
    assert device.reason == "not done within 5m; last report: applying (pulling image app:2.0.0)"


def test_a_timeout_while_offline_says_so() -> None:
    h = Harness.make(1, parse_policy(waves="100%", apply_timeout="1m"))
    h.tick()
    h.fleet["pi-01"].online = False
    h.run(lambda h: h.device("pi-01").status is Status.FAILED)
    assert h.device("pi-01").reason == "not done within 1m; the device is offline"


# Gates and the acceptance scenario


def test_acceptance_three_of_ten_fail_so_the_rollout_halts_and_rolls_back() -> None:
    h = Harness.make(10)
    reasons = {
        "pi-03": "image pull failed: registry 127.0.0.1:5000 unreachable (connection refused)",
        "pi-04": "container web exited with code 1",
        "pi-05": "health check http://localhost:8080/healthz failed: 503",
    }
    for device_id, reason in reasons.items():
        h.fleet[device_id].behaviour, h.fleet[device_id].failure = BROKEN, reason
    h.finish()
    assert h.status() is RolloutStatus.ROLLED_BACK
    assert dict(failures(h.state)) == reasons
    # Exactly the devices this rollout changed go back, to what they ran before.
    assert h.reverts() == [Revert(f"pi-0{n}", *OLD) for n in range(1, 6)]
    assert set(h.assigned) == {"pi-01", "pi-02", "pi-03", "pi-04", "pi-05"}
    (halted,) = h.events(Event.HALTED)
    assert "3 of 3 devices in wave 3 of 4 failed, reaching the failure threshold of 30%" in (
        halted.message
    )
    for device_id, reason in reasons.items():
        assert f"{device_id} ({reason})" in halted.message
        assert f"{device_id} ({reason})" in h.state.reason
    (rolled_back,) = h.events(Event.ROLLED_BACK)
    assert "5 devices return to their previous version" in rolled_back.message
    assert all(d.reverted for d in h.state.devices)
    assert {d.device_id: d.status for d in h.state.devices if d.status is Status.FAILED}.keys() == (
        reasons.keys()
    )
    for device in h.fleet.values():
        assert device.desired == OLD


def test_with_default_thresholds_one_failure_in_a_wave_halts_once_success_is_out_of_reach() -> None:
    h = Harness.make(10, parse_policy(waves="100%"))
    h.fleet["pi-07"].behaviour = BROKEN
    h.finish()
    assert h.status() is RolloutStatus.ROLLED_BACK
    assert h.state.reason.startswith(
        "only 9 of 10 devices in wave 1 of 1 can still succeed; "
        "the success threshold of 100% needs 10; failed: pi-07 (container web exited"
    )
    assert len(h.reverts()) == 10


def test_a_lower_success_threshold_lets_a_failure_through() -> None:
    h = Harness.make(10, parse_policy(waves="100%", success_threshold="80%"))
    h.fleet["pi-07"].behaviour = BROKEN
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert h.state.reason == "9 devices run app@2.0.0; 1 failed, 0 skipped"


def test_an_absolute_failure_threshold_counts_the_whole_rollout() -> None:
    policy = parse_policy(waves="5,100%", success_threshold="50%", failure_threshold="2")
    h = Harness.make(10, policy)
    h.fleet["pi-01"].behaviour = BROKEN
    h.run(lambda h: h.state.wave == 1)
    assert h.state.status is RolloutStatus.RUNNING  # one failure: below the threshold
    h.fleet["pi-08"].behaviour = BROKEN
    h.finish()
    assert h.status() is RolloutStatus.ROLLED_BACK
    assert h.state.reason.startswith("2 devices failed, reaching the failure threshold of 2")


def test_on_failure_pause_halts_without_reverting_and_resume_accepts_the_failures() -> None:
    from signalbeam.domain.rollouts import resume

    h = Harness.make(10, parse_policy(on_failure="pause"))
    h.fleet["pi-03"].behaviour = BROKEN
    h.run(lambda h: h.state.status is not RolloutStatus.RUNNING)
    assert h.state.status is RolloutStatus.HALTED
    assert h.reverts() == [] and "pi-03 (container web exited with code 1)" in h.state.reason
    h.run(lambda h: not any(d.in_flight for d in h.state.devices))
    assert h.state.status is RolloutStatus.HALTED and h.state.wave == 2
    h.carry_out(resume(h.state, h.now))
    assert "1 failed devices are accepted" in h.events(Event.RESUMED)[0].message
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert h.state.reason == "9 devices run app@2.0.0; 1 failed, 0 skipped"


def test_a_device_already_on_the_version_is_not_changed_and_not_reverted() -> None:
    h = Harness.make(3, parse_policy(waves="100%"))
    h.fleet["pi-01"].running = h.fleet["pi-01"].desired = NEW
    h.fleet["pi-03"].behaviour = BROKEN
    h.finish()
    assert h.status() is RolloutStatus.ROLLED_BACK
    assert not h.device("pi-01").changed
    assert [r.device_id for r in h.reverts()] == ["pi-02", "pi-03"]


def test_a_device_that_ran_nothing_reverts_to_nothing() -> None:
    h = Harness.make(2, parse_policy(waves="100%"), running=(None, None))
    h.fleet["pi-02"].behaviour = BROKEN
    h.finish()
    assert h.reverts() == [Revert("pi-01", None, None), Revert("pi-02", None, None)]


# Offline devices


def test_an_offline_device_is_skipped_after_the_wait_and_retried_when_it_returns() -> None:
    h = Harness.make(3, parse_policy(waves="1,100%", offline_wait="5m"))
    h.fleet["pi-01"].online = False
    h.tick()
    canary = h.device("pi-01")
    assert (canary.status, canary.offline_since) == (Status.PENDING, START)
    h.run(lambda h: h.device("pi-01").status is Status.SKIPPED)
    assert h.now - timedelta(seconds=10) == START + timedelta(minutes=5)
    assert h.device("pi-01").cause is Cause.OFFLINE
    assert "offline for 5m; it is updated if it comes back" in h.device("pi-01").reason
    # The wave had no reachable device left, so the next one started.
    assert h.state.wave == 1 and h.assigned == {"pi-02": 1, "pi-03": 1}
    h.fleet["pi-01"].online = True
    h.tick()
    assert h.device("pi-01").status is Status.UPDATING and h.assigned["pi-01"] == 1
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert set(h.statuses().values()) == {"succeeded"}


def test_skipped_devices_do_not_hold_up_completion() -> None:
    h = Harness.make(3, parse_policy(waves="100%", offline_wait="1m"))
    h.fleet["pi-02"].online = False
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert h.state.reason == "2 devices run app@2.0.0; 0 failed, 1 skipped"
    assert len(h.events(Event.DEVICE_SKIPPED)) == 1


def test_the_wait_policy_waits_for_offline_devices() -> None:
    h = Harness.make(2, parse_policy(waves="1,100%", offline="wait"))
    h.fleet["pi-01"].online = False
    h.run(lambda h: h.now >= START + timedelta(hours=3), seconds=60)
    assert h.statuses() == {"pi-01": "pending"} and h.assigned == {}
    h.fleet["pi-01"].online = True
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED


def test_a_device_coming_back_online_before_the_wait_starts_normally() -> None:
    h = Harness.make(1, parse_policy(offline_wait="5m"))
    h.fleet["pi-01"].online = False
    h.run(lambda h: h.now == START + timedelta(minutes=4))
    h.fleet["pi-01"].online = True
    h.tick()
    device = h.device("pi-01")
    assert (device.status, device.offline_since) == (Status.UPDATING, None)


# Transient failures and retries


def test_transient_failures_are_retried_with_backoff() -> None:
    policy = parse_policy(waves="100%", retry_backoff="30s", max_retries=3)
    h = Harness.make(1, policy, behaviour=TRANSIENT, transient_failures=2)
    times: list[datetime] = []
    while h.state.status.active:
        now = h.now
        if assigns(h.tick(5).actions):
            times.append(now)
    assert h.state.status is RolloutStatus.COMPLETED and h.assigned == {"pi-01": 3}
    # Failure is reported 5 s after each assignment, then 30 s, then 60 s of backoff.
    assert [b - a for a, b in itertools.pairwise(times)] == [
        timedelta(seconds=35),
        timedelta(seconds=65),
    ]
    (first, second) = h.events(Event.DEVICE_RETRYING)
    assert "artifact download cut after 3 MiB; retry 1 of 3 in 30s" in first.message
    assert "retry 2 of 3 in 1m" in second.message


def test_retries_run_out_and_the_device_fails() -> None:
    policy = parse_policy(waves="100%", retry_backoff="10s", max_retries=2)
    h = Harness.make(1, policy, behaviour=TRANSIENT, transient_failures=10)
    h.finish()
    assert h.assigned == {"pi-01": 3}
    assert failures(h.state) == [
        ("pi-01", "artifact download cut after 3 MiB (still failing after 3 attempts)")
    ]


def test_permanent_failures_are_not_retried() -> None:
    h = Harness.make(1, parse_policy(waves="100%"), behaviour=BROKEN)
    h.finish()
    assert h.assigned == {"pi-01": 1}
    assert h.device("pi-01").cause is Cause.AGENT


# Limits: parallelism and maintenance windows


def test_no_more_than_max_parallel_devices_update_at_once() -> None:
    h = Harness.make(10, parse_policy(waves="100%", max_parallel=3))
    peak = 0
    while h.state.status.active:
        h.tick()
        peak = max(peak, counts(h.state)[Status.UPDATING])
    assert peak == 3 and h.state.status is RolloutStatus.COMPLETED


def test_no_device_starts_outside_the_maintenance_window() -> None:
    h = Harness.make(2, parse_policy(waves="100%", window="Mon 13:00-14:00 UTC"))
    h.run(lambda h: h.now == START + timedelta(hours=1), seconds=60)
    assert h.assigned == {}
    outcome = h.tick()
    assert assigns(outcome.actions) == [Assign(("pi-01", "pi-02"), *NEW)]


def test_windows_use_each_devices_timezone() -> None:
    h = Harness.make(2, parse_policy(waves="100%", window="Mon 13:00-14:00"))
    h.fleet["pi-01"].timezone = "Europe/Oslo"  # 13:00 there is 12:00 UTC
    h.tick(60)
    assert h.assigned == {"pi-01": 1}
    h.run(lambda h: "pi-02" in h.assigned, seconds=60)
    assert h.now - timedelta(seconds=60) == START + timedelta(hours=1)


def test_an_update_started_in_the_window_finishes_after_it_closes() -> None:
    h = Harness.make(1, parse_policy(waves="100%", window="Mon 12:00-12:01 UTC"))
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert h.now > START + timedelta(minutes=1)


def test_a_retry_waits_for_the_window_too() -> None:
    policy = parse_policy(waves="100%", retry_backoff="1s", window="Mon 12:00-12:01 UTC")
    h = Harness.make(1, policy, behaviour=TRANSIENT, transient_failures=1)
    h.run(lambda h: h.now >= START + timedelta(minutes=30), seconds=60)
    assert h.assigned == {"pi-01": 1}
    assert h.device("pi-01").status is Status.PENDING


# Membership


def test_devices_joining_the_target_land_in_later_waves() -> None:
    h = Harness.make(4, parse_policy(waves="1,50%,100%"))
    h.tick()
    h.fleet["pi-05"] = replace(h.fleet["pi-01"])
    h.target.append("pi-05")
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED
    assert [ids(h.state.in_wave(w)) for w in range(3)] == [
        ["pi-01"],
        ["pi-02", "pi-03"],
        ["pi-04", "pi-05"],
    ]


def test_without_dynamic_devices_joining_after_the_last_wave_are_left_alone() -> None:
    h = Harness.make(2, parse_policy(waves="100%"))
    h.tick()
    h.fleet["pi-03"] = replace(h.fleet["pi-01"])
    h.target.append("pi-03")
    h.finish()
    assert "pi-03" not in h.statuses() and h.state.status is RolloutStatus.COMPLETED


def test_a_dynamic_rollout_keeps_taking_new_devices() -> None:
    h = Harness.make(2, parse_policy(waves="1,100%", dynamic=True))
    h.run(lambda h: set(h.statuses().values()) == {"succeeded"} and h.state.wave == 1)
    assert h.state.status is RolloutStatus.RUNNING
    h.fleet["pi-03"] = replace(h.fleet["pi-01"], desired=OLD, running=OLD)
    h.target.append("pi-03")
    h.run(lambda h: h.statuses().get("pi-03") == "succeeded")
    assert h.device("pi-03").wave == 1 and h.state.status is RolloutStatus.RUNNING


def test_a_pending_device_that_leaves_the_target_is_skipped_and_returns() -> None:
    h = Harness.make(2, parse_policy(waves="100%", offline="wait"))
    h.fleet["pi-02"].online = False
    h.tick()
    h.target.remove("pi-02")
    h.tick()
    assert (h.device("pi-02").status, h.device("pi-02").cause) == (
        Status.SKIPPED,
        Cause.LEFT_TARGET,
    )
    h.target.append("pi-02")
    h.fleet["pi-02"].online = True
    h.finish()
    assert h.assigned == {"pi-01": 1, "pi-02": 1}


def test_a_device_held_by_another_rollout_is_skipped_until_released() -> None:
    h = Harness.make(2, parse_policy(waves="100%", offline="wait"))
    h.fleet["pi-02"].claimed_by = "rollout r0 (app@3.0.0)"
    h.fleet["pi-01"].online = False  # keeps the rollout running
    h.tick()
    assert h.device("pi-02").reason == "held by rollout r0 (app@3.0.0)"
    h.fleet["pi-02"].claimed_by = None
    h.tick()
    assert h.device("pi-02").status is Status.UPDATING


def test_a_cordoned_device_is_skipped_until_uncordoned() -> None:
    h = Harness.make(2, parse_policy(waves="100%", offline="wait"))
    h.fleet["pi-02"].cordoned = True
    h.fleet["pi-01"].online = False  # keeps the rollout running
    h.tick()
    assert (h.device("pi-02").status, h.device("pi-02").cause) == (Status.SKIPPED, Cause.CORDONED)
    assert h.device("pi-02").reason == "cordoned (uncordon it to include it)"
    h.fleet["pi-02"].cordoned = False
    h.tick()
    assert h.device("pi-02").status is Status.UPDATING


# Dry run


def test_the_dry_run_shows_waves_and_offline_devices() -> None:
    h = Harness.make(10)
    for device_id in ("pi-04", "pi-09"):
        h.fleet[device_id].online = False
    seen_now = {device_id: device.observe() for device_id, device in h.fleet.items()}
    del seen_now["pi-10"]  # never heard from
    result = plan(h.state.policy, h.target, seen_now)
    assert [list(wave) for wave in result.waves] == [
        ["pi-01"],
        ["pi-02"],
        ["pi-03", "pi-04", "pi-05"],
        ["pi-06", "pi-07", "pi-08", "pi-09", "pi-10"],
    ]
    assert result.offline == ("pi-04", "pi-09", "pi-10")


def test_a_naive_clock_is_refused_by_step() -> None:
    h = Harness.make(1)
    with pytest.raises(ValueError, match="timezone-aware"):
        step(h.state, datetime(2026, 3, 2, tzinfo=None), h.target, {})
    assert START.tzinfo is UTC
