"""The metric generator: plausible bounds, reproducible, and valid device API v1 heartbeats."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signalbeam.protocol.device_v1 import Heartbeat
from signalbeam.sim.metrics import CPU_RANGE, DISK_RANGE, TEMPERATURE_RANGE, MetricWalk


@settings(max_examples=40)
@given(st.integers(min_value=0, max_value=2**32), st.floats(min_value=0, max_value=120))
def test_metrics_stay_within_plausible_bounds(seed: int, elapsed: float) -> None:
    walk = MetricWalk(seed)
    for _ in range(200):
        beat = Heartbeat.model_validate(walk.step(elapsed))
        assert beat.cpu_percent is not None
        assert CPU_RANGE[0] <= beat.cpu_percent <= CPU_RANGE[1]
        assert beat.memory_percent is not None and 0 < beat.memory_percent < 100
        assert all(DISK_RANGE[0] <= d.percent <= DISK_RANGE[1] for d in beat.disks)
        assert beat.temperature_celsius is not None
        assert TEMPERATURE_RANGE[0] <= beat.temperature_celsius <= TEMPERATURE_RANGE[1]
        assert beat.load1 is not None and beat.load1 >= 0


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    first, second, other = MetricWalk(42), MetricWalk(42), MetricWalk(43)
    run = [first.step(10) for _ in range(20)]
    assert run == [second.step(10) for _ in range(20)]
    assert run != [other.step(10) for _ in range(20)]


def test_cpu_wanders_rather_than_standing_still() -> None:
    walk = MetricWalk(1)
    values = {walk.step(10)["cpu_percent"] for _ in range(50)}
    assert len(values) > 20


def test_counters_only_grow() -> None:
    walk = MetricWalk(5)
    beats = [walk.step(10) for _ in range(30)]
    for key in ("uptime_seconds", "net_bytes_sent", "net_bytes_recv"):
        series = [beat[key] for beat in beats]
        assert series == sorted(series), key
    assert beats[-1]["uptime_seconds"] - beats[0]["uptime_seconds"] == 290


def test_every_device_reports_its_root_filesystem() -> None:
    for seed in range(50):
        mounts = [disk["mount"] for disk in MetricWalk(seed).step(1)["disks"]]
        assert mounts[0] == "/" and len(mounts) == len(set(mounts))
