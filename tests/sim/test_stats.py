"""Latency percentiles and fleet counters: the numbers the simulator and benchmarks print."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalbeam.sim.stats import FleetStats, LatencyRecorder, percentile, render


def test_percentiles_interpolate_between_ranks() -> None:
    recorder = LatencyRecorder()
    for value in range(1, 101):
        recorder.record(value / 1000)
    assert recorder.percentile(0.5) == pytest.approx(0.0505)
    assert recorder.percentile(0.95) == pytest.approx(0.09505)
    assert recorder.percentile(0.99) == pytest.approx(0.09901)
    assert recorder.percentile(0.0) == pytest.approx(0.001)
    assert recorder.percentile(1.0) == pytest.approx(0.1)
    assert recorder.mean == pytest.approx(0.0505)


def test_fraction_within_a_bound_counts_samples_at_or_below_it() -> None:
    recorder = LatencyRecorder()
    for value in (0.2, 0.5, 1.0, 1.5):
        recorder.record(value)
    assert recorder.fraction_within(1.0) == 0.75
    assert recorder.fraction_within(0.1) == 0.0
    assert math.isnan(LatencyRecorder().fraction_within(1.0))


def test_no_samples_means_no_numbers_rather_than_zero() -> None:
    recorder = LatencyRecorder()
    assert math.isnan(recorder.percentile(0.5))
    summary = recorder.summary_ms()
    assert summary == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}


def test_one_sample_is_every_percentile() -> None:
    recorder = LatencyRecorder()
    recorder.record(0.012)
    assert recorder.summary_ms() == {
        "count": 1,
        "p50": 12.0,
        "p95": 12.0,
        "p99": 12.0,
        "max": 12.0,
        "mean": 12.0,
    }


def test_fraction_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 95)


def test_memory_stays_bounded_and_estimates_stay_close() -> None:
    recorder = LatencyRecorder(max_samples=2_000, seed=7)
    for value in range(100_000):
        recorder.record(value / 100_000)
    assert recorder.count == 100_000
    assert recorder.maximum == pytest.approx(0.99999)
    assert recorder.percentile(0.5) == pytest.approx(0.5, abs=0.05)
    assert recorder.percentile(0.99) == pytest.approx(0.99, abs=0.02)


@given(st.lists(st.floats(min_value=0, max_value=60), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_within_the_samples(values: list[float]) -> None:
    recorder = LatencyRecorder()
    for value in values:
        recorder.record(value)
    p50, p95, p99 = (recorder.percentile(f) for f in (0.5, 0.95, 0.99))
    assert min(values) <= p50 <= p95 <= p99 <= max(values)


def test_summary_counts_errors_by_kind_and_renders_them() -> None:
    stats = FleetStats(devices=3)
    stats.sync_succeeded(0.010)
    stats.sync_failed("HTTP 503")
    stats.sync_failed("HTTP 503")
    stats.watch_failed("ReadTimeout")
    summary = stats.summary()
    assert summary["syncs_ok"] == 1 and summary["syncs_failed"] == 2
    assert summary["errors"] == {"sync: HTTP 503": 2, "watch: ReadTimeout": 1}
    text = "\n".join(render(summary))
    assert "syncs:          1 ok, 2 failed" in text
    assert "p50 10.0 ms" in text
    assert "2 x sync: HTTP 503" in text
