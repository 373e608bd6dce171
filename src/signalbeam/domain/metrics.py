"""Metric samples, buckets and downsampling: the arithmetic behind charts and retention."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

SERIES = ("cpu", "memory", "disk", "load1", "temperature")
MAX_POINTS = 5000


@dataclass(frozen=True)
class Sample:
    """One measurement of a device's health; a missing sensor is None."""

    ts: datetime
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    load1: float | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Aggregate:
    """Averages standing for `weight` samples: one raw sample, or a stored rollup."""

    ts: datetime
    means: dict[str, float | None]
    weight: int = 1
    maxima: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, sample: Sample) -> Aggregate:
        """A single raw sample as an aggregate of weight one."""
        return cls(ts=sample.ts, means={name: getattr(sample, name) for name in SERIES})


@dataclass
class Bucket:
    """Running sums for one time bucket; `counts` per series because sensors can be missing."""

    start: datetime
    samples: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)

    def add(self, part: Aggregate) -> None:
        """Fold in one sample, or a pre-averaged rollup that stands for several samples."""
        self.samples += part.weight
        for name, value in part.means.items():
            if value is None:
                continue
            self.sums[name] = self.sums.get(name, 0.0) + value * part.weight
            self.counts[name] = self.counts.get(name, 0) + part.weight
            peak = part.maxima.get(name)
            peak = value if peak is None else peak
            self.maxima[name] = max(self.maxima.get(name, peak), peak)

    def mean(self, name: str) -> float | None:
        """The average of one series in this bucket, or None when nothing reported it."""
        if not self.counts.get(name):
            return None
        return round(self.sums[name] / self.counts[name], 3)

    def maximum(self, name: str) -> float | None:
        """The largest value of one series in this bucket."""
        return self.maxima.get(name)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_start(ts: datetime, step: timedelta) -> datetime:
    """The start of the step-aligned bucket holding `ts` (aligned to the Unix epoch)."""
    step_us = step // timedelta(microseconds=1)
    offset_us = (ts - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=offset_us - offset_us % step_us)


def downsample(parts: Iterable[Aggregate], step: timedelta) -> list[Bucket]:
    """Group samples or rollups into step-aligned buckets, oldest first."""
    buckets: dict[datetime, Bucket] = {}
    for part in parts:
        start = bucket_start(part.ts, step)
        buckets.setdefault(start, Bucket(start=start)).add(part)
    return [buckets[key] for key in sorted(buckets)]


def choose_step(span: timedelta, requested: timedelta | None, floor: timedelta) -> timedelta:
    """The step for a chart: the requested one, else one giving about 300 points."""
    if requested is not None:
        return requested
    seconds = max(floor.total_seconds(), span.total_seconds() / 300)
    return timedelta(seconds=round(seconds))
