"""The reconcile planner: exhaustive cases and properties, no I/O."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalbeam.domain.reconcile import Action, Observed, Step, Wanted, converged, plan

STATES = ("running", "starting", "restarting", "exited", "missing")


def steps(actions: list[Action]) -> list[str]:
    return [str(action) for action in actions]


def test_fresh_device_prepares_everything_then_starts_then_checks() -> None:
    wanted = [Wanted("container", "web", "a1"), Wanted("app", "relay", "b1")]
    assert steps(plan(wanted, [])) == [
        "prepare container web",
        "prepare app relay",
        "start container web",
        "start app relay",
        "check container web",
        "check app relay",
    ]


def test_nothing_to_do_when_everything_runs_as_wanted() -> None:
    wanted = [Wanted("container", "web", "a1")]
    observed = [Observed("container", "web", "a1", "running")]
    assert steps(plan(wanted, observed)) == ["check container web"]
    assert converged(wanted, observed)


def test_changed_unit_is_prepared_before_the_old_one_is_stopped() -> None:
    wanted = [Wanted("container", "web", "v2")]
    observed = [Observed("container", "web", "v1", "running")]
    assert steps(plan(wanted, observed)) == [
        "prepare container web",
        "stop container web",
        "start container web (stop-first)",
        "check container web",
    ]
    assert not converged(wanted, observed)


def test_a_start_first_unit_starts_beside_the_old_copy_which_retires_after_every_check() -> None:
    wanted = [Wanted("container", "web", "v2", "start-first"), Wanted("app", "relay", "b1")]
    observed = [
        Observed("container", "web", "v1", "running"),
        Observed("container", "old", "o", "running"),
    ]
    assert steps(plan(wanted, observed)) == [
        "prepare container web",
        "prepare app relay",
        "start container web (start-first)",
        "start app relay",
        "check container web",
        "check app relay",
        "retire container web",
        "stop container old",
    ]


@pytest.mark.parametrize("state", ["exited", "missing"])
def test_a_start_first_unit_whose_old_copy_is_down_is_replaced_stop_first(state: str) -> None:
    # Nothing serves meanwhile either way; stopping first frees what the old copy holds.
    wanted = [Wanted("app", "relay", "b2", "start-first")]
    observed = [Observed("app", "relay", "b1", state)]
    assert steps(plan(wanted, observed)) == [
        "prepare app relay",
        "stop app relay",
        "start app relay (stop-first)",
        "check app relay",
    ]


@pytest.mark.parametrize("state", ["exited", "missing"])
def test_unchanged_unit_that_stopped_is_started_again_without_a_fetch(state: str) -> None:
    wanted = [Wanted("app", "relay", "b1")]
    observed = [Observed("app", "relay", "b1", state)]
    assert steps(plan(wanted, observed)) == ["start app relay", "check app relay"]


@pytest.mark.parametrize("state", ["running", "starting", "restarting"])
def test_live_unit_with_same_spec_is_left_alone(state: str) -> None:
    wanted = [Wanted("app", "relay", "b1")]
    assert steps(plan(wanted, [Observed("app", "relay", "b1", state)])) == ["check app relay"]


def test_units_the_bundle_dropped_are_stopped_last_after_health_checks() -> None:
    wanted = [Wanted("container", "web", "a1")]
    observed = [
        Observed("container", "zeta", "z", "running"),
        Observed("app", "old", "o", "exited"),
        Observed("container", "web", "a0", "running"),
    ]
    assert steps(plan(wanted, observed)) == [
        "prepare container web",
        "stop container web",
        "start container web (stop-first)",
        "check container web",
        "stop app old",
        "stop container zeta",
    ]


def test_a_unit_that_moves_from_container_to_app_replaces_the_container() -> None:
    wanted = [Wanted("app", "web", "a1")]
    observed = [Observed("container", "web", "a1", "running")]
    assert steps(plan(wanted, observed)) == [
        "prepare app web",
        "stop container web",
        "start app web (stop-first)",
        "check app web",
    ]


def test_empty_desired_stops_everything() -> None:
    observed = [Observed("app", "b", "x", "running"), Observed("container", "a", "y", "exited")]
    assert steps(plan([], observed)) == ["stop container a", "stop app b"]


def test_duplicate_wanted_names_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unique"):
        plan([Wanted("app", "x", "1"), Wanted("container", "x", "2")], [])


def _cases() -> list[tuple[list[Wanted], list[Observed]]]:
    """Every combination for two unit names: absent, or kind x fingerprint x state."""
    options: list[tuple[str, str, str] | None] = [None]
    options += list(itertools.product(("container", "app"), ("f1", "f2"), STATES))
    cases = []
    for want_a, want_b in itertools.product((None, "f1", "f2"), repeat=2):
        pairs = (("a", want_a, "start-first"), ("b", want_b, "stop-first"))
        wanted = [Wanted("container", n, f, order) for n, f, order in pairs if f]
        for obs_a, obs_b in itertools.product(options, repeat=2):
            observed = [Observed(o[0], n, o[1], o[2]) for n, o in (("a", obs_a), ("b", obs_b)) if o]
            cases.append((wanted, observed))
    return cases


@pytest.mark.parametrize(("wanted", "observed"), _cases())
def test_invariants_hold_for_every_two_unit_combination(
    wanted: list[Wanted], observed: list[Observed]
) -> None:
    check_invariants(wanted, observed)


def check_invariants(wanted: list[Wanted], observed: list[Observed]) -> None:
    actions = plan(wanted, observed)
    order = {action: index for index, action in enumerate(actions)}
    assert len(order) == len(actions), "no action is planned twice"
    first_stop_or_start = min(
        (i for i, a in enumerate(actions) if a.step in (Step.STOP, Step.START)), default=None
    )
    for index, action in enumerate(actions):
        if action.step is Step.PREPARE and first_stop_or_start is not None:
            assert index < first_stop_or_start, "every fetch happens before anything changes"
    wanted_keys = {(u.kind, u.name) for u in wanted}
    for unit in wanted:
        check = order[Action(Step.CHECK, unit.kind, unit.name)]
        start = order.get(Action(Step.START, unit.kind, unit.name))
        if start is not None:
            assert start < check
            if Action(Step.PREPARE, unit.kind, unit.name) in order:
                assert order[Action(Step.PREPARE, unit.kind, unit.name)] < start
    checks = [i for i, a in enumerate(actions) if a.step is Step.CHECK]
    by_key = {(u.kind, u.name): u for u in wanted}
    for found in observed:
        replacing = by_key.get((found.kind, found.name))
        retire = order.get(Action(Step.RETIRE, found.kind, found.name))
        live = found.state in ("running", "starting", "restarting")
        if (
            replacing is not None
            and replacing.fingerprint != found.fingerprint
            and replacing.order == "start-first"
            and live
        ):
            assert retire is not None and all(retire > i for i in checks), (
                "a live copy replaced start-first serves until every check passed"
            )
            assert Action(Step.STOP, found.kind, found.name) not in order
            continue
        assert retire is None, "only a live copy replaced start-first is retired"
        stop = order.get(Action(Step.STOP, found.kind, found.name))
        if found.name not in {u.name for u in wanted}:
            assert stop is not None, f"{found.name} is no longer wanted and must be stopped"
            assert all(stop > i for i in checks), "drop old units only after health checks"
        elif (found.kind, found.name) not in wanted_keys:
            assert stop is not None, "a unit replaced by another kind is stopped"
    # Applying the plan and observing again leaves nothing but health checks.
    after = [Observed(u.kind, u.name, u.fingerprint, "running") for u in wanted]
    assert converged(wanted, after)


names = st.sampled_from(["a", "b", "c", "d"])
fingerprints = st.sampled_from(["f1", "f2", "f3"])
kinds = st.sampled_from(["container", "app"])


orders = st.sampled_from(["start-first", "stop-first"])


@given(
    wanted=st.lists(
        st.tuples(kinds, names, fingerprints, orders), unique_by=lambda t: t[1], max_size=4
    ),
    observed=st.lists(
        st.tuples(kinds, names, fingerprints, st.sampled_from(STATES)),
        unique_by=lambda t: (t[0], t[1]),
        max_size=6,
    ),
)
def test_invariants_hold_for_random_fleets_of_units(
    wanted: list[tuple[str, str, str, str]], observed: list[tuple[str, str, str, str]]
) -> None:
    check_invariants([Wanted(*w) for w in wanted], [Observed(*o) for o in observed])
