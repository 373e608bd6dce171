"""Retry delays: exponential, fully jittered, capped, reset by a success."""

from __future__ import annotations

from signalbeam.agent.backoff import Backoff, full_jitter


def test_ceiling_doubles_until_the_cap() -> None:
    top = [full_jitter(attempt, 1.0, 60.0, lambda: 1.0) for attempt in range(9)]
    assert top == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert full_jitter(3, 1.0, 60.0, lambda: 0.0) == 0.0
    assert full_jitter(3, 1.0, 60.0, lambda: 0.5) == 4.0


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    assert full_jitter(10_000, 1.0, 60.0, lambda: 0.999) == 60.0 * 0.999


def test_backoff_counts_failures_and_resets() -> None:
    draws = iter([1.0, 1.0, 1.0, 0.5])
    backoff = Backoff(base=1.0, cap=3.0, draw=lambda: next(draws))
    assert not backoff.failing
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 2.0, 3.0]
    assert backoff.failing
    backoff.reset()
    assert not backoff.failing
    assert backoff.next_delay() == 0.5


def test_real_randomness_stays_within_bounds() -> None:
    backoff = Backoff(base=1.0, cap=60.0)
    for attempt in range(50):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(60.0, 2.0**attempt)


def test_a_silent_network_is_probed_about_once_an_interval_however_long_it_lasts() -> None:
    draws = iter([0.0, 0.999, 0.5] * 20)
    backoff = Backoff(base=1.0, cap=60.0, draw=lambda: next(draws))
    delays = [backoff.probe_delay(5.0) for _ in range(60)]
    assert all(2.5 <= delay < 5.0 for delay in delays), "never the 60 s an error would earn"
    assert min(delays) == 2.5 and max(delays) > 4.99, "jittered over half an interval"
    assert backoff.attempt == 60, "each probe still counts as a failure"


def test_real_probe_delays_spread_a_fleet_over_the_interval() -> None:
    backoff = Backoff()
    delays = sorted(backoff.probe_delay(10.0) for _ in range(2_000))
    # 2,000 devices whose link came back at once: no tenth of the window holds a quarter.
    buckets = [sum(1 for d in delays if 5.0 + i * 0.5 <= d < 5.5 + i * 0.5) for i in range(10)]
    assert max(buckets) < 500 and min(buckets) > 100
