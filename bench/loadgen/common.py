"""What every load shares: talking to the runner, enrolling devices, sync request bytes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.http import HttpError, Pool, Target, build_request
from signalbeam.sim.metrics import MetricWalk
from signalbeam.sim.stats import LatencyRecorder

SYNC_PATH = "/api/device/v1/sync"
BODY_VARIANTS = 64
FACTS = {
    "hostname": "bench",
    "os": "Debian GNU/Linux 12",
    "arch": "aarch64",
    "agent_version": "bench",
}


def emit(event: str, **data: Any) -> None:
    """One JSON line to the runner."""
    sys.stdout.buffer.write(orjson.dumps({"event": event, **data}) + b"\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """A progress line the runner shows on stderr."""
    emit("log", message=message)


class Phase:
    """A measured stretch: tells the runner (which samples CPU) and times our own CPU."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Phase:
        emit("phase", phase=self.name, state="start")
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        emit("phase", phase=self.name, state="end")

    @property
    def cpu_percent(self) -> float:
        """The load generator's own CPU over the phase (100 = one core)."""
        return round(100 * self.cpu / self.wall, 1) if self.wall else 0.0


@dataclass
class Tally:
    """Latencies and errors of one kind of request."""

    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    errors: Counter[str] = field(default_factory=Counter)

    def ok(self, seconds: float) -> None:
        """Count one good answer."""
        self.latency.record(seconds)

    def failed(self, kind: str) -> None:
        """Count one failure by kind."""
        self.errors[kind] += 1

    def summary(self, seconds: float) -> dict[str, Any]:
        """Counts, rate over `seconds`, latency percentiles (ms) and errors."""
        return {
            "ok": self.latency.count,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors.most_common(5)),
            "per_second": round(self.latency.count / seconds, 1) if seconds else None,
            "latency_ms": self.latency.summary_ms(),
        }


async def timed(pool: Pool, data: bytes, tally: Tally, expect: int = 200) -> bytes | None:
    """Send one request, record its latency or failure; the body when it succeeded."""
    started = time.perf_counter()
    try:
        status, body = await pool.request(data)
    except (HttpError, OSError) as err:
        tally.failed(type(err).__name__)
        return None
    if status != expect:
        tally.failed(f"HTTP {status}")
        return None
    tally.ok(time.perf_counter() - started)
    return body


def json_request(target: Target, method: str, path: str, body: Any, token: str | None) -> bytes:
    """A JSON request, authenticated when `token` is given."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return build_request(target, method, path, orjson.dumps(body), headers)


async def _enroll_one(
    pool: Pool, target: Target, token: str, device_id: str, tally: Tally
) -> str | None:
    body = {"token": token, "device_id": device_id, "facts": FACTS, "labels": {"bench": "yes"}}
    answer = await timed(
        pool, json_request(target, "POST", "/api/device/v1/enroll", body, None), tally
    )
    return None if answer is None else str(orjson.loads(answer)["credential"])


async def enroll(
    target: Target, token: str, ids: list[str], concurrency: int = 32
) -> tuple[dict[str, str], float]:
    """Enroll devices (bounded concurrency): (device id -> credential, enrollments/s).

    Raises if any enrollment fails.
    """
    pool, tally, limit = Pool(target), Tally(), asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(device_id: str) -> tuple[str, str | None]:
        async with limit:
            return device_id, await _enroll_one(pool, target, token, device_id, tally)

    results = await asyncio.gather(*(one(device_id) for device_id in ids))
    pool.close()
    if tally.errors:
        raise RuntimeError(f"enrollment failed: {dict(tally.errors)}")
    seconds = time.perf_counter() - started
    rate = round(len(ids) / seconds, 1)
    say(f"enrolled {len(ids)} devices in {seconds:.1f}s ({rate:g}/s)")
    return {device_id: credential for device_id, credential in results if credential}, rate


def sync_bodies(known_generation: int = 0) -> list[bytes]:
    """Pre-built sync bodies with varied, plausible metrics (device API v1 `SyncRequest`)."""
    reported = {"generation": max(known_generation, 0), "status": "idle"}
    return [
        orjson.dumps(
            {
                "heartbeat": MetricWalk(seed).step(10.0),
                "reported": reported,
                "known_generation": known_generation,
            }
        )
        for seed in range(BODY_VARIANTS)
    ]


class SyncRequests:
    """Sync request bytes per device: a per-device head joined to a shared, pre-built body."""

    def __init__(self, target: Target, credentials: dict[str, str], known_generation: int = 0):
        self._heads = {
            device_id: (
                f"POST {SYNC_PATH} HTTP/1.1\r\nHost: {target.authority}\r\n"
                f"Authorization: Bearer {credential}\r\nContent-Type: application/json\r\n"
            ).encode()
            for device_id, credential in credentials.items()
        }
        self._tails = [
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            for body in sync_bodies(known_generation)
        ]

    def get(self, device_id: str, round_: int) -> bytes:
        """The request for this device's `round_`-th sync."""
        return self._heads[device_id] + self._tails[round_ % len(self._tails)]
