"""Properties of the rollout engine over random fleets, policies and operator choices."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from signalbeam.domain.rollout_policy import parse_policy
from signalbeam.domain.rollout_state import (
    DeviceRolloutStatus,
    Revert,
    RolloutEventType,
    RolloutState,
    RolloutStatus,
)
from signalbeam.domain.rollouts import cancel as cancel_rollout
from signalbeam.domain.rollouts import counts, resume, rollback
from tests.domain.rollout_harness import BROKEN, HANG, NEW, OK, OLD, TRANSIENT, Harness

KINDS = (OK, OK, OK, HANG, TRANSIENT, BROKEN, "offline", "already")
CONTROLS = {"resume": resume, "cancel": cancel_rollout, "rollback": rollback}

fleets = st.lists(st.sampled_from(KINDS), min_size=1, max_size=12)
policies = st.fixed_dictionaries(
    {
        "waves": st.sampled_from(["100%", "1,100%", "1,10%,50%,100%", "2,50%,100%"]),
        "success_threshold": st.sampled_from(["100%", "50%", "0%"]),
        "failure_threshold": st.sampled_from(["30%", "1", "3"]),
        "on_failure": st.sampled_from(["rollback", "pause"]),
        "max_parallel": st.none() | st.integers(1, 3),
        "max_retries": st.integers(0, 2),
    }
)


def build(kinds: list[str], inputs: dict[str, object]) -> Harness:
    policy = parse_policy(
        **inputs,  # type: ignore[arg-type]
        soak="30s",
        apply_timeout="2m",
        offline_wait="1m",
        retry_backoff="10s",
    )
    h = Harness.make(len(kinds), policy)
    for device, kind in zip(h.fleet.values(), kinds, strict=True):
        if kind == "offline":
            device.online = False
        elif kind == "already":
            device.running = device.desired = NEW
        else:
            device.behaviour = kind
    return h


def drive(h: Harness, choices: list[str]) -> None:
    """Run to the end; when halted, the operator resumes, cancels or rolls back."""
    limit = h.state.policy.max_parallel
    for _ in range(3000):
        if not h.state.status.active:
            return
        if h.state.status is RolloutStatus.HALTED:
            choice = choices.pop(0) if choices else "rollback"
            h.carry_out(CONTROLS[choice](h.state, h.now))
            continue
        h.tick()
        assert limit is None or counts(h.state)[DeviceRolloutStatus.UPDATING] <= limit
        assert RolloutState.from_dict(json.loads(json.dumps(h.state.to_dict()))) == h.state
    raise AssertionError(f"still {h.state.status} after 3000 steps")


@settings(max_examples=150, deadline=None)
@given(
    kinds=fleets,
    inputs=policies,
    choices=st.lists(st.sampled_from(sorted(CONTROLS)), max_size=3),
)
def test_every_rollout_ends_and_keeps_its_promises(
    kinds: list[str], inputs: dict[str, object], choices: list[str]
) -> None:
    h = build(kinds, inputs)
    drive(h, choices)
    retried = Counter(e.device_id for e in h.events(RolloutEventType.DEVICE_RETRYING))
    # No device is assigned twice in one rollout unless it is being retried.
    for device_id, times in h.assigned.items():
        assert times <= 1 + retried[device_id]
    reverts = h.reverts()
    assert len({r.device_id for r in reverts}) == len(reverts)
    if h.state.status is RolloutStatus.ROLLED_BACK:
        # Every device the rollout changed goes back to what it ran before, and no other.
        changed = {d for d, kind in zip(h.target, kinds, strict=True) if kind != "already"}
        assert {r.device_id for r in reverts} == changed & set(h.assigned)
        assert all(r == Revert(r.device_id, *OLD) for r in reverts)
    else:
        assert reverts == []
    if h.state.status is RolloutStatus.COMPLETED:
        assert not any(d.in_flight for d in h.state.devices)
        assert [d.device_id for d in h.state.devices] == h.target
    assert all(d.reason for d in h.state.devices if d.status is DeviceRolloutStatus.FAILED)
