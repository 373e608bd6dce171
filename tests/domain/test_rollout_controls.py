"""Operator actions on rollouts, exclusivity between rollouts, and storing a rollout as JSON."""

from __future__ import annotations

import json

import pytest

from signalbeam.domain.errors import Conflict
from signalbeam.domain.rollout_policy import parse_policy
from signalbeam.domain.rollout_state import (
    Assign,
    Cause,
    DeviceRolloutStatus,
    Emit,
    Revert,
    RolloutEventType,
    RolloutState,
    RolloutStatus,
)
from signalbeam.domain.rollouts import (
    cancel,
    changed_devices,
    claims,
    ensure_exclusive,
    pause,
    resume,
    rollback,
    step,
)
from tests.domain.rollout_harness import BROKEN, HANG, NEW, OLD, Harness

Status = DeviceRolloutStatus
Event = RolloutEventType


def in_third_wave() -> Harness:
    """Ten devices: two waves done, the third (three devices) updating, four never started."""
    h = Harness.make(10, behaviour=HANG)
    for device_id in ("pi-01", "pi-02"):
        h.fleet[device_id].behaviour = "ok"
    h.run(lambda h: h.state.wave == 2)
    h.tick()
    return h


def test_pause_stops_new_devices_but_tracks_those_updating() -> None:
    h = Harness.make(10)
    h.tick()
    h.carry_out(pause(h.state, h.now))
    assert h.state.status is RolloutStatus.PAUSED
    assert "no new ones start" in h.events(Event.PAUSED)[0].message
    h.run(lambda h: h.now.minute == 10)
    assert h.statuses() == {"pi-01": "succeeded"} and h.assigned == {"pi-01": 1}
    h.carry_out(resume(h.state, h.now))
    assert h.events(Event.RESUMED)[0].message == "rollout r1 (app@2.0.0) resumed"
    h.finish()
    assert h.status() is RolloutStatus.COMPLETED


def test_a_failure_while_paused_halts_on_resume() -> None:
    h = Harness.make(3, parse_policy(waves="100%"))
    h.fleet["pi-02"].behaviour = BROKEN
    h.tick()
    h.carry_out(pause(h.state, h.now))
    h.tick()
    assert h.device("pi-02").status is Status.FAILED
    assert h.state.status is RolloutStatus.PAUSED
    h.carry_out(resume(h.state, h.now))
    h.tick()
    assert h.status() is RolloutStatus.ROLLED_BACK


def test_cancel_keeps_what_was_updated_and_starts_nothing_more() -> None:
    h = in_third_wave()
    h.carry_out(cancel(h.state, h.now))
    assert h.state.status is RolloutStatus.CANCELLED
    assert h.reverts() == []
    assert h.statuses() == {
        "pi-01": "succeeded",
        "pi-02": "succeeded",
        "pi-03": "skipped",
        "pi-04": "skipped",
        "pi-05": "skipped",
    }
    assert h.device("pi-03").cause is Cause.STOPPED
    assert "keeps app@2.0.0" in h.device("pi-03").reason
    assert "5 devices given app@2.0.0 keep it" in h.events(Event.CANCELLED)[0].message
    before = h.state
    assert h.tick().state is before  # cancelled is final


def test_cancel_before_a_device_started_says_so() -> None:
    h = Harness.make(2, parse_policy(waves="100%", offline="wait"), online=False)
    h.tick()
    h.carry_out(cancel(h.state, h.now))
    assert h.device("pi-01").reason == "the rollout was cancelled before this device started"
    assert changed_devices(h.state) == []


def test_manual_rollback_reverts_exactly_the_changed_devices_at_any_time() -> None:
    h = in_third_wave()
    h.carry_out(rollback(h.state, h.now))
    assert h.status() is RolloutStatus.ROLLED_BACK
    assert h.reverts() == [Revert(f"pi-0{n}", *OLD) for n in range(1, 6)]
    assert h.state.reason == "rolled back by an operator"
    assert changed_devices(h.state) == []
    assert h.device("pi-04").reason == "the rollout was rolled back before this device finished"


def test_a_completed_rollout_can_be_rolled_back() -> None:
    h = Harness.make(3)
    h.finish()
    h.carry_out(rollback(h.state, h.now))
    assert [r.device_id for r in h.reverts()] == ["pi-01", "pi-02", "pi-03"]
    assert all(device.desired == OLD for device in h.fleet.values())


def test_a_cancelled_rollout_can_be_rolled_back_and_reverts_nothing_twice() -> None:
    h = in_third_wave()
    h.carry_out(cancel(h.state, h.now))
    h.carry_out(rollback(h.state, h.now))
    assert len(h.reverts()) == 5


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (
            RolloutStatus.COMPLETED,
            resume,
            "is completed, so it cannot be resumed; a completed rollout can only be rolled back",
        ),
        (RolloutStatus.COMPLETED, pause, "cannot be paused; a completed rollout can only be"),
        (RolloutStatus.COMPLETED, cancel, "cannot be cancelled"),
        (
            RolloutStatus.RUNNING,
            resume,
            "a running rollout can be paused, cancelled or rolled back",
        ),
        (RolloutStatus.PAUSED, pause, "a paused rollout can be resumed, cancelled or rolled back"),
        (RolloutStatus.HALTED, pause, "a halted rollout can be resumed (accepting its failures)"),
        (RolloutStatus.CANCELLED, resume, "a cancelled rollout can only be rolled back"),
        (RolloutStatus.ROLLED_BACK, rollback, "is finished; start a new one to try again"),
        (RolloutStatus.ROLLED_BACK, resume, "cannot be resumed"),
    ],
)
def test_impossible_actions_say_what_is_possible(
    status: RolloutStatus, action: object, message: str
) -> None:
    h = Harness.make(1)
    state = RolloutState(**{**h.state.__dict__, "status": status})
    with pytest.raises(Conflict) as raised:
        action(state, h.now)  # type: ignore[operator]
    assert message in raised.value.detail
    assert raised.value.detail.startswith(f"rollout r1 (app@2.0.0) is {status}")


def test_claims_cover_the_target_while_waves_remain() -> None:
    h = Harness.make(4, parse_policy(waves="1,100%"))
    h.tick()
    assert claims(h.state) == {"pi-01": "rollout r1 (app@2.0.0)"}
    assert set(claims(h.state, h.target)) == {"pi-01", "pi-02", "pi-03", "pi-04"}
    h.finish()
    assert claims(h.state, h.target) == {}


def test_a_second_rollout_on_the_same_device_is_refused_naming_the_first() -> None:
    h = Harness.make(3)
    h.tick()
    held = claims(h.state, h.target)
    with pytest.raises(Conflict) as raised:
        ensure_exclusive(["pi-09", "pi-02", "pi-03"], held)
    assert raised.value.field == "target"
    assert raised.value.detail.startswith(
        "devices pi-02 and 1 more are already in active rollout r1 (app@2.0.0); "
        "only one active rollout may target a device"
    )
    with pytest.raises(Conflict, match=r"^device pi-01 is already in active rollout r1"):
        ensure_exclusive(["pi-01"], held)
    ensure_exclusive(["pi-09"], held)


def test_a_state_round_trips_through_json_and_steps_the_same() -> None:
    h = in_third_wave()
    h.fleet["pi-03"].behaviour = BROKEN
    stored = json.dumps(h.state.to_dict())
    loaded = RolloutState.from_dict(json.loads(stored))
    assert loaded == h.state
    seen = {device_id: device.observe() for device_id, device in h.fleet.items()}
    assert step(loaded, h.now, h.target, seen) == step(h.state, h.now, h.target, seen)


def test_old_stored_states_load_with_defaults_for_new_fields() -> None:
    h = in_third_wave()
    data = h.state.to_dict()
    for device in data["devices"]:
        del device["accepted"]
    assert RolloutState.from_dict(data) == h.state


def test_events_name_the_rollout_and_the_device() -> None:
    h = Harness.make(1, parse_policy(waves="100%"), behaviour=BROKEN)
    h.finish()
    (failed,) = h.events(Event.DEVICE_FAILED)
    assert failed == Emit(
        Event.DEVICE_FAILED, "pi-01 failed: container web exited with code 1", "pi-01"
    )
    assert [a for a in h.log if isinstance(a, Assign)] == [Assign(("pi-01",), *NEW)]
