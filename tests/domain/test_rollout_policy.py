"""Rollout policy inputs and wave planning, as people type them on the CLI and in the API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.rollout_policy import (
    DEFAULT_WAVES,
    Amount,
    OfflinePolicy,
    OnFailure,
    RolloutPolicy,
    format_waves,
    parse_amount,
    parse_policy,
    parse_waves,
    plan_waves,
)


def devices(count: int) -> list[str]:
    return [f"d{index}" for index in range(count)]


def sizes(waves: list[list[str]]) -> list[int]:
    return [len(wave) for wave in waves]


def test_default_waves_are_a_canary_then_ten_fifty_and_all() -> None:
    assert format_waves(DEFAULT_WAVES) == "1,10%,50%,100%"
    assert parse_waves("1, 10%, 50%, 100%") == DEFAULT_WAVES


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, []),
        (1, [1]),
        (2, [1, 1]),
        (3, [1, 1, 1]),
        (10, [1, 1, 3, 5]),
        (100, [1, 9, 40, 50]),
        (10_000, [1, 999, 4000, 5000]),
    ],
)
def test_default_wave_sizes(count: int, expected: list[int]) -> None:
    assert sizes(plan_waves(devices(count), DEFAULT_WAVES)) == expected


def test_waves_keep_the_target_order_and_drop_duplicates() -> None:
    target = ["c", "a", "c", "b", "a", "d"]
    assert plan_waves(target, parse_waves("1,50%,100%")) == [["c"], ["a"], ["b", "d"]]


def test_one_wave_of_everything() -> None:
    assert plan_waves(devices(5), parse_waves("100%")) == [devices(5)]


def test_last_wave_takes_everything_whatever_its_size() -> None:
    assert sizes(plan_waves(devices(10), parse_waves("2,20%"))) == [2, 8]


def test_counts_larger_than_the_target_take_what_there_is() -> None:
    assert sizes(plan_waves(devices(3), parse_waves("5,10,100%"))) == [3]


def test_planning_needs_a_wave() -> None:
    with pytest.raises(ValueError, match="at least one wave"):
        plan_waves(devices(3), ())


@given(
    count=st.integers(0, 300),
    waves=st.lists(st.integers(1, 100), min_size=1, max_size=6).map(sorted),
    canary=st.booleans(),
)
def test_waves_partition_the_target_and_are_never_empty(
    count: int, waves: list[int], canary: bool
) -> None:
    amounts = (Amount(1),) * canary + tuple(Amount(value, True) for value in waves)
    planned = plan_waves(devices(count), amounts)
    assert [device for wave in planned for device in wave] == devices(count)
    assert all(planned) and len(planned) <= len(amounts)
    # Each wave reaches at least its cumulative share (as long as devices remain).
    for index, amount in enumerate(amounts[: len(planned)]):
        reached = sum(sizes(planned[: index + 1]))
        assert reached >= min(count, amount.of(count))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "waves are empty"),
        ("0,100%", "out of range"),
        ("0%", "out of range"),
        ("150%", "out of range"),
        ("1,,100%", "neither a number"),
        ("ten", "neither a number"),
        ("-1", "neither a number"),
        ("50%,10%", "shrink"),
        ("5,2,100%", "shrink"),
        (",".join(["1"] * 101), "at most 100"),
    ],
)
def test_bad_waves_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_waves(text)
    assert raised.value.field == "waves"


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [("30%", Amount(30, True), 3), ("3", Amount(3), 3), ("12.5%", Amount(12.5, True), 2)],
)
def test_amounts(text: str, expected: Amount, count: int) -> None:
    amount = parse_amount(text, field="failure_threshold")
    assert amount == expected
    assert amount.of(10) == count
    assert parse_amount(str(amount), field="failure_threshold") == amount


def test_shares_round_up_without_floating_point_surprises() -> None:
    assert Amount(30, True).of(10) == 3
    assert Amount(10, True).of(30) == 3
    assert Amount(30, True).of(11) == 4
    assert Amount(100, True).of(0) == 0


def test_policy_defaults() -> None:
    policy = parse_policy()
    assert policy == RolloutPolicy()
    assert policy.success_threshold == Amount(100, True)
    assert policy.failure_threshold == Amount(30, True)
    assert policy.on_failure is OnFailure.ROLLBACK
    assert policy.soak == timedelta(seconds=60)
    assert policy.offline is OfflinePolicy.SKIP
    assert policy.windows == ()


def test_policy_from_inputs() -> None:
    policy = parse_policy(
        waves="2,100%",
        success_threshold="90%",
        failure_threshold="3",
        on_failure="Pause",
        soak="5m",
        apply_timeout="20m",
        offline="wait",
        offline_wait="1h",
        max_retries=5,
        retry_backoff="10s",
        max_parallel=4,
        window="Mon-Fri 01:00-05:00",
        dynamic=True,
    )
    assert policy.waves == (Amount(2), Amount(100, True))
    assert policy.failure_threshold == Amount(3)
    assert policy.on_failure is OnFailure.PAUSE
    assert policy.soak == timedelta(minutes=5)
    assert policy.offline is OfflinePolicy.WAIT
    assert (policy.max_retries, policy.max_parallel, policy.dynamic) == (5, 4, True)
    assert str(policy.windows[0]) == "Mon-Fri 01:00-05:00"


def test_policy_round_trips_through_json() -> None:
    policy = parse_policy(
        waves="1,25%,100%", failure_threshold="2", soak="1.5s", window="Sat,Sun 00:00-24:00 UTC"
    )
    data = json.loads(json.dumps(policy.to_dict()))
    assert RolloutPolicy.from_dict(data) == policy
    assert RolloutPolicy.from_dict(RolloutPolicy().to_dict()) == RolloutPolicy()


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"success_threshold": "101%"}, "success_threshold", "out of range"),
        ({"failure_threshold": "0"}, "failure_threshold", "out of range"),
        ({"failure_threshold": "0%"}, "failure_threshold", "out of range"),
        ({"failure_threshold": "a third"}, "failure_threshold", "30%"),
        ({"on_failure": "explode"}, "on_failure", "rollback or pause"),
        ({"offline": "ignore"}, "offline", "skip or wait"),
        ({"soak": "a while"}, "soak", "1h30m"),
        ({"apply_timeout": "0s"}, "apply_timeout", "longer than 0s"),
        ({"offline_wait": "soon"}, "offline_wait", "1h30m"),
        ({"retry_backoff": "-5s"}, "retry_backoff", "1h30m"),
        ({"max_retries": 21}, "max_retries", "0 to 20"),
        ({"max_retries": -1}, "max_retries", "0 to 20"),
        ({"max_parallel": 0}, "max_parallel", "never update"),
        ({"window": "nights"}, "window", "Mon-Fri 01:00-05:00"),
    ],
)
def test_bad_policy_inputs_name_the_field(inputs: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_policy(**inputs)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_zero_success_threshold_and_zero_soak_are_allowed() -> None:
    policy = parse_policy(success_threshold="0%", soak="0s", offline_wait="0", max_retries=0)
    assert policy.success_threshold == Amount(0, True)
    assert policy.soak == timedelta(0)
