"""Bucketing and downsampling, the arithmetic behind charts and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signalbeam.domain.metrics import Aggregate, Sample, bucket_start, choose_step, downsample

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_bucket_start_aligns_to_the_step() -> None:
    assert bucket_start(
        T0 + timedelta(minutes=7, seconds=3), timedelta(minutes=5)
    ) == T0 + timedelta(minutes=5)
    assert bucket_start(T0, timedelta(minutes=5)) == T0


def test_downsample_averages_and_keeps_maxima_ignoring_missing_sensors() -> None:
    samples = [
        Sample(T0, cpu=10, temperature=None),
        Sample(T0 + timedelta(seconds=30), cpu=30, temperature=50),
        Sample(T0 + timedelta(minutes=1), cpu=80),
    ]
    buckets = downsample([Aggregate.of(s) for s in samples], timedelta(minutes=1))
    assert [b.start for b in buckets] == [T0, T0 + timedelta(minutes=1)]
    first, second = buckets
    assert (first.samples, first.mean("cpu"), first.maximum("cpu")) == (2, 20.0, 30)
    assert first.mean("temperature") == 50.0, "a missing reading does not drag the average down"
    assert first.mean("memory") is None
    assert (second.samples, second.mean("cpu")) == (1, 80.0)


def test_rollups_weigh_by_their_sample_count() -> None:
    rollup = Aggregate(T0, {"cpu": 10.0}, weight=9, maxima={"cpu": 15.0})
    raw = Aggregate.of(Sample(T0 + timedelta(seconds=1), cpu=100))
    (bucket,) = downsample([rollup, raw], timedelta(minutes=5))
    assert bucket.samples == 10
    assert bucket.mean("cpu") == 19.0
    assert bucket.maximum("cpu") == 100


def test_choose_step() -> None:
    assert choose_step(timedelta(hours=1), None, timedelta(seconds=10)) == timedelta(seconds=12)
    assert choose_step(timedelta(minutes=10), None, timedelta(seconds=10)) == timedelta(seconds=10)
    assert choose_step(timedelta(days=1), timedelta(minutes=1), timedelta(seconds=10)) == timedelta(
        minutes=1
    )
