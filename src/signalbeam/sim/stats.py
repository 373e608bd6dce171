"""What a simulated fleet did: request counts, errors and latency percentiles (pure)."""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_SAMPLES = 200_000


def percentile(ordered: list[float], fraction: float) -> float:
    """The `fraction` percentile (0..1) of sorted values, linearly interpolated; NaN if empty."""
    if not ordered:
        return math.nan
    if not 0 <= fraction <= 1:
        raise ValueError(f"percentile fraction must be between 0 and 1, not {fraction}")
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * weight


class LatencyRecorder:
    """Latencies in seconds with exact count, mean and max, and percentiles.

    Samples are kept exactly up to `max_samples`; past that a uniform reservoir keeps
    memory bounded for simulators that run for days, so percentiles become estimates.
    """

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self._samples: list[float] = []
        self._max_samples = max_samples
        self._random = random.Random(seed)
        self._sorted: list[float] | None = None
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0

    def record(self, seconds: float) -> None:
        """Add one latency."""
        self.count += 1
        self.total += seconds
        self.maximum = max(self.maximum, seconds)
        self._sorted = None
        if len(self._samples) < self._max_samples:
            self._samples.append(seconds)
            return
        slot = self._random.randrange(self.count)
        if slot < self._max_samples:
            self._samples[slot] = seconds

    def percentile(self, fraction: float) -> float:
        """The `fraction` percentile (0..1) in seconds; NaN before the first sample."""
        if self._sorted is None:
            self._sorted = sorted(self._samples)
        return percentile(self._sorted, fraction)

    def fraction_within(self, seconds: float) -> float:
        """The share of latencies at or below `seconds` (0..1); NaN before the first sample."""
        if not self._samples:
            return math.nan
        if self._sorted is None:
            self._sorted = sorted(self._samples)
        return bisect.bisect_right(self._sorted, seconds) / len(self._sorted)

    @property
    def mean(self) -> float:
        """Average latency in seconds; NaN before the first sample."""
        return self.total / self.count if self.count else math.nan

    def summary_ms(self) -> dict[str, float | int | None]:
        """Count and p50/p95/p99/max/mean in milliseconds (None when there is no sample)."""
        values = {
            "p50": self.percentile(0.50),
            "p95": self.percentile(0.95),
            "p99": self.percentile(0.99),
            "max": self.maximum if self.count else math.nan,
            "mean": self.mean,
        }
        out: dict[str, float | int | None] = {"count": self.count}
        out.update({k: None if math.isnan(v) else round(v * 1000, 2) for k, v in values.items()})
        return out


@dataclass
class FleetStats:
    """Counters shared by every device of one fleet (one event loop, so no locking)."""

    devices: int = 0
    enrolled: int = 0
    reused: int = 0
    stopped: int = 0
    syncs_ok: int = 0
    syncs_failed: int = 0
    watch_wakeups: int = 0
    watch_errors: int = 0
    applies_ok: int = 0
    applies_failed: int = 0
    sessions_answered: int = 0
    sessions_failed: int = 0
    reboots: int = 0  # reboot actions answered (the device came back with a new boot id)
    sync_latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    errors: Counter[str] = field(default_factory=Counter)

    def sync_succeeded(self, seconds: float) -> None:
        """Count one answered sync and its latency."""
        self.syncs_ok += 1
        self.sync_latency.record(seconds)

    def sync_failed(self, kind: str) -> None:
        """Count one failed sync under a short reason such as `HTTP 503`."""
        self.syncs_failed += 1
        self.errors[f"sync: {kind}"] += 1

    def watch_failed(self, kind: str) -> None:
        """Count one failed watch request."""
        self.watch_errors += 1
        self.errors[f"watch: {kind}"] += 1

    def session_failed(self, kind: str) -> None:
        """Count one session a device could not answer."""
        self.sessions_failed += 1
        self.errors[f"session: {kind}"] += 1

    def summary(self) -> dict[str, Any]:
        """Everything as plain JSON-able data."""
        return {
            "devices": self.devices,
            "enrolled": self.enrolled,
            "reused_identities": self.reused,
            "stopped": self.stopped,
            "syncs_ok": self.syncs_ok,
            "syncs_failed": self.syncs_failed,
            "sync_latency_ms": self.sync_latency.summary_ms(),
            "watch_wakeups": self.watch_wakeups,
            "watch_errors": self.watch_errors,
            "applies_ok": self.applies_ok,
            "applies_failed": self.applies_failed,
            "sessions_answered": self.sessions_answered,
            "sessions_failed": self.sessions_failed,
            "reboots": self.reboots,
            "errors": dict(self.errors.most_common()),
        }


def _ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def render(summary: dict[str, Any]) -> list[str]:
    """The human summary printed when a simulator run ends."""
    latency = summary["sync_latency_ms"]
    lines = [
        f"devices:        {summary['devices']} ({summary['enrolled']} enrolled, "
        f"{summary['reused_identities']} from the state file, {summary['stopped']} stopped)",
        f"syncs:          {summary['syncs_ok']} ok, {summary['syncs_failed']} failed",
        f"sync latency:   p50 {_ms(latency['p50'])}, p95 {_ms(latency['p95'])}, "
        f"p99 {_ms(latency['p99'])}, max {_ms(latency['max'])}",
        f"watch wake-ups: {summary['watch_wakeups']} ({summary['watch_errors']} watch errors)",
        f"applies:        {summary['applies_ok']} ok, {summary['applies_failed']} failed",
        f"sessions:       {summary['sessions_answered']} answered, "
        f"{summary['sessions_failed']} failed, {summary['reboots']} reboots",
    ]
    lines += [f"  {count} x {kind}" for kind, count in summary["errors"].items()]
    return lines
