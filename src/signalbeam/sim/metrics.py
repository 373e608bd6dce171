"""Plausible, slowly varying health numbers for one virtual device (pure, seeded)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

CPU_RANGE = (2.0, 90.0)
MEMORY_RANGE = (15.0, 92.0)
DISK_RANGE = (5.0, 97.0)
TEMPERATURE_RANGE = (30.0, 85.0)
MOUNTS = ("/", "/data", "/var/lib/containers")


def clamp(value: float, low: float, high: float) -> float:
    """`value` held inside [low, high]."""
    return min(high, max(low, value))


@dataclass(frozen=True)
class Profile:
    """The fixed character of a device: how many cores, how busy, which disks."""

    cores: int
    mounts: tuple[str, ...]
    cpu_bias: float
    ambient: float


def profile(rng: random.Random) -> Profile:
    """A random device character (a Pi, a mini-PC, a busy gateway...)."""
    return Profile(
        cores=rng.choice((1, 2, 4, 4, 8)),
        mounts=MOUNTS[: rng.choice((1, 1, 2, 3))],
        cpu_bias=rng.uniform(5.0, 60.0),
        ambient=rng.uniform(32.0, 45.0),
    )


class MetricWalk:
    """A bounded random walk per metric; `step` gives the next heartbeat as wire JSON.

    CPU wanders around a per-device bias between 2 and 90 %, memory drifts slowly,
    disks fill slowly and are sometimes cleaned up, load follows CPU and core count,
    and temperature follows CPU above the ambient temperature.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.profile = profile(self._rng)
        self.uptime = self._rng.uniform(60.0, 30 * 86400.0)
        self.cpu = clamp(self.profile.cpu_bias, *CPU_RANGE)
        self.memory = self._rng.uniform(25.0, 70.0)
        self.disks = {mount: self._rng.uniform(10.0, 80.0) for mount in self.profile.mounts}
        self.net_sent = self._rng.randrange(10**6, 10**9)
        self.net_recv = self._rng.randrange(10**6, 10**9)

    def _walk_cpu(self) -> None:
        pull = (self.profile.cpu_bias - self.cpu) * 0.2
        self.cpu = clamp(self.cpu + pull + self._rng.gauss(0.0, 8.0), *CPU_RANGE)

    def _walk_memory(self) -> None:
        self.memory = clamp(self.memory + self._rng.gauss(0.05, 1.5), *MEMORY_RANGE)

    def _walk_disks(self, elapsed: float) -> None:
        for mount, used in self.disks.items():
            if used > 90.0 and self._rng.random() < 0.05:
                used -= self._rng.uniform(20.0, 40.0)  # someone cleaned up
            grown = used + abs(self._rng.gauss(0.0, 0.02)) * elapsed / 10.0
            self.disks[mount] = clamp(grown, *DISK_RANGE)

    def _load1(self) -> float:
        return max(0.0, self.cpu / 100.0 * self.profile.cores + self._rng.gauss(0.0, 0.1))

    def _temperature(self) -> float:
        heat = self.profile.ambient + self.cpu * 0.4 + self._rng.gauss(0.0, 0.8)
        return clamp(heat, *TEMPERATURE_RANGE)

    def step(self, elapsed: float) -> dict[str, Any]:
        """Advance by `elapsed` seconds and return a heartbeat (device API v1 `Heartbeat`)."""
        elapsed = max(0.0, elapsed)
        self.uptime += elapsed
        self._walk_cpu()
        self._walk_memory()
        self._walk_disks(elapsed)
        self.net_sent += int(self._rng.uniform(200.0, 20_000.0) * elapsed)
        self.net_recv += int(self._rng.uniform(500.0, 80_000.0) * elapsed)
        load1 = self._load1()
        return {
            "uptime_seconds": round(self.uptime, 1),
            "cpu_percent": round(self.cpu, 1),
            "memory_percent": round(self.memory, 1),
            "disks": [{"mount": m, "percent": round(p, 1)} for m, p in self.disks.items()],
            "load1": round(load1, 2),
            "load5": round(load1 * 0.9, 2),
            "load15": round(load1 * 0.8, 2),
            "temperature_celsius": round(self._temperature(), 1),
            "net_bytes_sent": self.net_sent,
            "net_bytes_recv": self.net_recv,
        }
