"""Sync load: an open loop at a fixed rate (ingest) and a closed loop at full speed (ceiling)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from bench.http import Connection, HttpError, Pool, Target, build_request, connect
from bench.loadgen.common import Phase, SyncRequests, Tally, enroll, say, timed
from signalbeam.sim.stats import LatencyRecorder

START_DELAY = 0.5


async def sleep_until(moment: float) -> None:
    """Sleep until `time.perf_counter()` reaches `moment`."""
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def timed_phase(name: str, start: float, end: float) -> Phase:
    """Announce a phase from `start` to `end` (perf_counter times) and time our CPU over it."""
    await sleep_until(start)
    phase = Phase(name)
    with phase:
        await sleep_until(end)
    return phase


def device_ids(count: int) -> list[str]:
    """`bench-00000`... for `count` devices."""
    return [f"bench-{i:05d}" for i in range(count)]


class OpenLoop:
    """Every device syncs once per interval at its own fixed phase, whatever the latency."""

    def __init__(self, pool: Pool, requests: SyncRequests, spec: dict[str, Any]) -> None:
        self.pool, self.requests = pool, requests
        self.interval = float(spec["interval"])
        self.count = int(spec["devices"])
        self.start = time.perf_counter() + START_DELAY
        self.measure_from = self.start + float(spec["warmup"])
        self.measure_to = self.measure_from + float(spec["duration"])
        self.tally, self.warmup, self.lag = Tally(), Tally(), LatencyRecorder()
        self._rng = random.Random(7)

    async def device(self, slot: int, device_id: str) -> None:
        """One device's syncs until the measured window ends."""
        due = self.start + (slot + self._rng.random()) * self.interval / self.count
        round_ = 0
        while due < self.measure_to:
            await sleep_until(due)
            measured = due >= self.measure_from
            if measured:
                self.lag.record(time.perf_counter() - due)
            data = self.requests.get(device_id, round_)
            await timed(self.pool, data, self.tally if measured else self.warmup)
            round_, due = round_ + 1, due + self.interval


async def run_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    """N devices at interval I: latency, throughput and errors over the measured window."""
    target = Target(spec["host"], spec["port"])
    ids = device_ids(int(spec["devices"]))
    credentials, enroll_rate = await enroll(target, spec["token"], ids)
    pool = Pool(target)
    loop = OpenLoop(pool, SyncRequests(target, credentials), spec)
    say(f"{len(ids)} devices syncing every {loop.interval:g}s; warm-up {spec['warmup']}s")
    phase = asyncio.create_task(timed_phase("measure", loop.measure_from, loop.measure_to))
    await asyncio.gather(*(loop.device(slot, device_id) for slot, device_id in enumerate(ids)))
    measured = await phase
    pool.close()
    return {
        "devices": len(ids),
        "enrollments_per_second": enroll_rate,
        "target_rate": round(len(ids) / loop.interval, 1),
        "syncs": loop.tally.summary(float(spec["duration"])),
        "warmup_syncs": loop.warmup.summary(float(spec["warmup"])),
        "schedule_lag_ms": loop.lag.summary_ms(),
        "load_generator_cpu_percent": measured.cpu_percent,
        "connections_opened": pool.opened,
    }


RequestMaker = Callable[[int, int], bytes]


async def _worker(
    connection: Connection,
    make: RequestMaker,
    worker: int,
    window: tuple[float, float],
    tally: Tally,
    target: Target,
) -> None:
    measure_from, end = window
    sent = 0
    while time.perf_counter() < end:
        data = make(worker, sent)
        sent += 1
        started = time.perf_counter()
        try:
            status, _ = await connection.request(data)
        except HttpError as err:
            tally.failed(type(err).__name__)
            connection = await connect(target)
            continue
        if started >= measure_from:
            if status == 200:
                tally.ok(time.perf_counter() - started)
            else:
                tally.failed(f"HTTP {status}")
    connection.close()


async def closed_loop(
    target: Target, name: str, make: RequestMaker, spec: dict[str, Any]
) -> dict[str, Any]:
    """K clients sending back-to-back on their own connections; rate over the window."""
    workers, duration = int(spec["concurrency"]), float(spec["duration"])
    connections = await asyncio.gather(*(connect(target) for _ in range(workers)))
    start = time.perf_counter()
    window = (start + float(spec["warmup"]), start + float(spec["warmup"]) + duration)
    tally = Tally()
    phase = asyncio.create_task(timed_phase(name, *window))
    await asyncio.gather(
        *(_worker(c, make, w, window, tally, target) for w, c in enumerate(connections))
    )
    measured = await phase
    return {**tally.summary(duration), "load_generator_cpu_percent": measured.cpu_percent}


async def run_ceiling(spec: dict[str, Any]) -> dict[str, Any]:
    """Maximum sustained sync rate next to that of a trivial endpoint, at the same client counts.

    Group commit turns waiting clients into bigger batches, so the sync rate keeps rising
    with clients after a CPU-bound endpoint has levelled off: each endpoint is stepped
    through the same client counts and its best rate (zero errors) is its ceiling.
    """
    target = Target(spec["host"], spec["port"])
    ids = device_ids(int(spec["devices"]))
    credentials, _ = await enroll(target, spec["token"], ids)
    requests = SyncRequests(target, credentials)
    health = build_request(target, "GET", "/healthz")
    steps: dict[str, list[dict[str, Any]]] = {"sync": [], "healthz": []}
    for workers in spec["concurrency"]:
        say(f"closed loop: {workers} clients syncing back-to-back for {spec['duration']}s")
        syncs = await closed_loop(
            target,
            f"sync@{workers}",
            lambda w, n, k=workers: requests.get(ids[(w + n * k) % len(ids)], n),
            {**spec, "concurrency": workers},
        )
        steps["sync"].append({"concurrency": workers, **syncs})
    for workers in spec["concurrency"]:
        say(f"closed loop: {workers} clients on GET /healthz for {spec['duration']}s")
        trivial = await closed_loop(
            target, f"healthz@{workers}", lambda w, n: health, {**spec, "concurrency": workers}
        )
        steps["healthz"].append({"concurrency": workers, **trivial})
    best = {name: _best(runs) for name, runs in steps.items()}
    rate, base = best["sync"]["per_second"] or 0.0, best["healthz"]["per_second"] or 0.0
    return {
        "devices": len(ids),
        "concurrency": spec["concurrency"],
        **best,
        "steps": steps,
        "ratio": round(rate / base, 3) if base else None,
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest-rate run without errors (the highest-rate run if every one had errors)."""
    clean = [run for run in runs if run["errors"] == 0] or runs
    return max(clean, key=lambda run: run["per_second"] or 0.0)
