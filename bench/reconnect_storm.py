"""Reconnect storm: a whole simulated fleet comes back together after a server outage.

`python -m bench.reconnect_storm [--devices 10000] [--interval 60] [--outage 30]
[--backend sqlite|postgres] [--quick]`

One real server and, in this process, a simulated fleet whose devices sync every `--interval`
seconds and hold a watch, retrying the way the real agent does (`signalbeam.sim.reconnect`:
about once an interval, jittered, while nothing answers). Once every device has synced and the
fleet ran steadily for an interval, the server is stopped (SIGTERM), stays down for
`--outage` seconds and is started again at the same address on the same database. Measured:

- steady: sync latency before the outage (the same fleet, no storm);
- outage: the simulator's CPU while its devices probe the silent server;
- storm: seconds from the server serving again (`/readyz` answers, polled every 0.2 s) until
  50, 95 and 100 % of the devices had a sync answered, the most first syncs in one second,
  sync latency p50/p95/p99 and every failed sync or watch from then until one interval after
  the last device was back, against the ingest targets (p95 <= 25 ms, p99 <= 100 ms, no errors);
- CPU (100 = one core) of the server and of this process (the simulator) in each phase, and
  how late this event loop ran a 50 ms timer: a simulator that lags seconds (starved of CPU)
  would report its own delay as the server's latency.

The interval defaults to 60 s and each watch is held 60 s (the server's longest), not the
defaults 15 s and 30 s: every simulated device runs on this one event loop at about 1 ms of
CPU per request through httpx, so 10,000 devices at 15 s (about 1,000 requests/s) need a core
of their own, which the 2-core machine does not have beside a server and test suites (4,000
devices at 15 s, and 6,000 at 30 s, lagged 5-11 s there and counted that as failed connects).

The machine's load average is recorded, since other work may share it. JSON on stdout (and
bench/results/reconnect_storm-<backend>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.__main__ import raise_file_limit
from bench.harness import Server, Skip, database, emit, log, start_server, stop_server
from bench.session_ops import Meter
from signalbeam.sim.device import Behaviour, DeviceState, VirtualDevice
from signalbeam.sim.fleet import Fleet, FleetConfig
from signalbeam.sim.heap import settle_heap
from signalbeam.sim.stats import LatencyRecorder, percentile

POLL_SECONDS = 0.25
PROGRESS_SECONDS = 10.0
LAG_TICK_SECONDS = 0.05
# Enrollment is server-bound (about 110 devices/s on SQLite on an idle 2-core machine, 60/s beside
# a test suite, under 21/s at load average 25-37): allow 15/s, then the ramp and a minute.
ENROLL_RATE_FLOOR = 15.0
# First syncs (each also opens a watch) ramp at this rate: faster ramps queued them on SQLite.
FIRST_SYNCS_PER_SECOND = 200.0
# The ingest targets (README, "sync ingest"), held during the storm.
P95_MS = 25.0
P99_MS = 100.0


@dataclass(frozen=True)
class Plan:
    """How big the fleet is and how long each phase lasts (seconds)."""

    devices: int = 10_000
    interval: float = 60.0
    outage: float = 30.0
    steady_intervals: float = 1.0
    watch_timeout: float = 60.0

    @property
    def ramp(self) -> float:
        """Seconds over which the first syncs spread."""
        return max(self.interval, self.devices / FIRST_SYNCS_PER_SECOND)

    @property
    def online_timeout(self) -> float:
        """How long enrolling and the first syncs may take, scaled with the fleet."""
        return self.devices / ENROLL_RATE_FLOOR + self.ramp + 60.0


def back_after(synced: list[float | None], started: float, serving: float) -> list[float]:
    """Seconds after `serving` of each device's sync answered since `started` (sorted, pure).

    A sync answered between the server process starting and the bench seeing `/readyz`
    answer counts as back at 0 s.
    """
    return sorted(max(0.0, at - serving) for at in synced if at is not None and at >= started)


def back_summary(seconds: list[float], devices: int) -> dict[str, Any]:
    """When 50/95/100 % of `devices` were back, and the busiest second of first syncs."""

    def share(fraction: float) -> float | None:
        needed = max(1, round(fraction * devices))
        return round(seconds[needed - 1], 2) if len(seconds) >= needed else None

    busiest = max(Counter(int(s) for s in seconds).values(), default=0)
    return {
        "devices": devices,
        "back": len(seconds),
        "p50_seconds": share(0.50),
        "p95_seconds": share(0.95),
        "all_seconds": share(1.0),
        "median_of_back_seconds": round(percentile(seconds, 0.5), 2) if seconds else None,
        "most_first_syncs_in_one_second": busiest,
    }


class Lag:
    """How late this event loop runs a timer (the simulator's own delay, not the server's)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.recorder = LatencyRecorder()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(LAG_TICK_SECONDS)
            late = time.perf_counter() - began - LAG_TICK_SECONDS
            self.worst = max(self.worst, late)
            self.recorder.record(max(0.0, late))

    def take(self) -> float:
        """The worst lag since the last call (seconds)."""
        worst, self.worst = self.worst, 0.0
        return worst

    def stop(self) -> None:
        """Stop ticking."""
        self._task.cancel()


class Window:
    """Sync latency and failures of the fleet from now on (resets the shared recorder)."""

    def __init__(self, fleet: Fleet, meter: Meter) -> None:
        self._fleet, self._meter = fleet, meter
        fleet.stats.sync_latency = LatencyRecorder()
        self._errors = Counter(fleet.stats.errors)
        self._ok, self._began = fleet.stats.syncs_ok, time.monotonic()

    def read(self) -> dict[str, Any]:
        """Latency, syncs per second, errors by kind and CPU since the window opened."""
        stats, seconds = self._fleet.stats, time.monotonic() - self._began
        errors = Counter(stats.errors)
        errors.subtract(self._errors)
        failed = {kind: n for kind, n in errors.items() if n > 0}
        return {
            "seconds": round(seconds, 1),
            "syncs_ok": stats.syncs_ok - self._ok,
            "syncs_per_second": round((stats.syncs_ok - self._ok) / seconds, 1),
            "latency_ms": stats.sync_latency.summary_ms(),
            "errors": sum(failed.values()),
            "errors_by_kind": failed,
            **self._meter.read(),
        }


SYNC_ROUTE = "/api/device/v1/sync"


def server_buckets(server: Server) -> dict[float, float]:
    """The server's own sync-latency histogram (cumulative count per upper bound, seconds)."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    text = httpx.get(f"{server.url}/metrics", headers=headers, timeout=60).text
    found: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_duration_seconds_bucket")
                and labels.get("route") == SYNC_ROUTE
            ):
                bound = float(labels["le"])
                found[bound] = found.get(bound, 0.0) + sample.value
    return found


def server_view(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """What share of the window's syncs the server answered within 25 and 100 ms, by its own
    clock (from arrival to the end of the answer): the simulator's lag is not in these."""
    count = after.get(math.inf, 0.0) - before.get(math.inf, 0.0)

    def share(bound: float) -> float | None:
        done = after.get(bound, 0.0) - before.get(bound, 0.0)
        return round(100 * done / count, 2) if count else None

    return {
        "syncs": int(count),
        "within_25ms_percent": share(0.025),
        "within_100ms_percent": share(0.1),
    }


def meter(server: Server) -> Meter:
    """CPU of the server and of this process (the simulator)."""
    return Meter({"server": [server.process.pid], "simulator": [os.getpid()]})


async def until(check: Any, what: str, timeout: float, progress: Progress | None = None) -> float:
    """Poll `check()` until true; seconds it took (RuntimeError saying `what` after `timeout`)."""
    began = shown = time.monotonic()
    while not check():
        now = time.monotonic()
        if now - began > timeout:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s")
        if progress is not None and now - shown >= PROGRESS_SECONDS:
            shown = now
            log(f"  [{now - began:.0f}s] {progress.line()}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - began


@dataclass
class Progress:
    """The fleet and this loop's lag, for a progress line now and then."""

    fleet: Fleet
    lag: Lag
    since: float = 0.0  # devices count as synced from this time.monotonic() on

    def line(self) -> str:
        """Devices synced since `since`, syncs, the commonest errors, the worst loop lag."""
        stats = self.fleet.stats
        synced = sum(1 for at in synced_times(self.fleet) if at is not None and at >= self.since)
        errors = ", ".join(f"{n} x {kind}" for kind, n in stats.errors.most_common(3))
        return (
            f"{synced} of {len(self.fleet.devices)} synced; syncs {stats.syncs_ok} ok, "
            f"{stats.syncs_failed} failed{f' ({errors})' if errors else ''}; "
            f"simulator loop lag up to {self.lag.take() * 1000:.0f} ms"
        )


def running(fleet: Fleet) -> list[VirtualDevice]:
    """The devices still running: one the server refused (HTTP 401) stops for good."""
    return [d for d in fleet.devices.values() if d.state is not DeviceState.STOPPED]


def synced_times(fleet: Fleet) -> list[float | None]:
    """Each running device's last answered sync (time.monotonic())."""
    return [device.synced_at for device in running(fleet)]


async def bring_online(fleet: Fleet, plan: Plan, lag: Lag) -> dict[str, Any]:
    """Enroll and start the fleet; seconds until every device had a sync answered."""
    began = time.monotonic()
    await fleet.start()
    settle_heap()  # as `signalbeam sim` does once its devices are enrolled
    enrolled = time.monotonic() - began
    log(f"  {fleet.stats.enrolled} enrolled in {enrolled:.0f}s; first syncs over {plan.ramp:g}s")
    count = len(running(fleet))
    online = await until(
        lambda: all(at is not None for at in synced_times(fleet)),
        f"a first sync of all {count} devices",
        plan.online_timeout,
        Progress(fleet, lag),
    )
    return {
        "devices": count,
        "refused_by_the_server": len(fleet.devices) - count,
        "enroll_seconds": round(enrolled, 1),
        "enrolled_per_second": round(fleet.stats.enrolled / enrolled, 1) if enrolled else None,
        "ramp_seconds": plan.ramp,
        "first_syncs_done_seconds": round(online, 1),
    }


@dataclass(frozen=True)
class Restart:
    """The server started again: the process, and when it was started and first served."""

    server: Server
    started: float
    serving: float
    phase: dict[str, Any]


async def outage(server: Server, plan: Plan, workdir: Path, url: str | None) -> Restart:
    """Stop the server, wait out the outage, start it again at the same address."""
    began = time.monotonic()
    await asyncio.to_thread(stop_server, server)
    stopping = time.monotonic() - began
    simulator = Meter({"simulator": [os.getpid()]})
    await asyncio.sleep(plan.outage)
    cpu = simulator.read()
    extra = ["--sync-interval", f"{plan.interval:g}s"]
    spawned = time.monotonic()
    again = await asyncio.to_thread(start_server, workdir, url, extra, server.port)
    serving = time.monotonic()
    log(f"  server stopped in {stopping:.1f}s, down {plan.outage:g}s, serving again")
    phase = {
        "stopping_seconds": round(stopping, 1),
        "down_seconds": plan.outage,
        "start_to_serving_seconds": round(serving - spawned, 1),
        **cpu,
    }
    return Restart(again, spawned, serving, phase)


async def storm(fleet: Fleet, restart: Restart, plan: Plan, lag: Lag) -> dict[str, Any]:
    """From the server serving again until one interval after the last device was back."""
    window = Window(fleet, meter(restart.server))

    def back() -> list[float]:
        return back_after(synced_times(fleet), restart.started, restart.serving)

    with contextlib.suppress(RuntimeError):  # the result says how many came back
        progress = Progress(fleet, lag, restart.started)
        await until(
            lambda: len(back()) >= len(running(fleet)),
            "every device back",
            10 * plan.interval,
            progress,
        )
    summary = back_summary(back(), len(running(fleet)))
    await asyncio.sleep(plan.interval)
    return {"back": summary, **window.read()}


async def measure(workdir: Path, url: str | None, plan: Plan) -> dict[str, Any]:
    """Every phase on one server (restarted once) and one fleet."""
    extra = ["--sync-interval", f"{plan.interval:g}s"]
    server = await asyncio.to_thread(start_server, workdir, url, extra)
    try:
        token = await asyncio.to_thread(server.enrollment_token)
        behaviour = Behaviour(
            interval=plan.interval, watch=True, watch_timeout=plan.watch_timeout, fail_rate=0.0
        )
        config = FleetConfig(
            server=server.url,
            token=token,
            devices=plan.devices,
            behaviour=behaviour,
            prefix="storm-",
            state_file=workdir / "sim.json",
            ramp=plan.ramp,
        )
        fleet = Fleet(config)
        try:
            lag = Lag()
            result: dict[str, Any] = {"online": await bring_online(fleet, plan, lag)}
            # Again once every device has synced: the connections and tasks made since
            # enrolling live as long as the run, and full collections over them stalled this
            # loop for up to 1.5 s (seen with a gc callback), which was timed as sync latency.
            settle_heap()
            steady, lag.recorder = Window(fleet, meter(server)), LatencyRecorder()
            before = await asyncio.to_thread(server_buckets, server)
            await asyncio.sleep(plan.steady_intervals * plan.interval)
            result["steady"] = steady.read()
            after = await asyncio.to_thread(server_buckets, server)
            result["steady"]["server_view"] = server_view(before, after)
            result["steady"]["simulator_loop_lag_ms"] = lag.recorder.summary_ms()
            restart = await outage(server, plan, workdir, url)
            server, result["outage"] = restart.server, restart.phase
            lag.recorder = LatencyRecorder()
            result["storm"] = await storm(fleet, restart, plan, lag)
            # The restarted server counted from zero: all of its syncs are the storm's.
            after = await asyncio.to_thread(server_buckets, server)
            result["storm"]["server_view"] = server_view({}, after)
            result["storm"]["simulator_loop_lag_ms"] = lag.recorder.summary_ms()
            lag.stop()
        finally:
            await fleet.stop()
        result["simulator"] = fleet.summary()
    finally:
        await asyncio.to_thread(stop_server, server)
    return result


def targets(storm_result: dict[str, Any]) -> list[dict[str, Any]]:
    """The ingest targets held during the storm: p95 <= 25 ms, p99 <= 100 ms, no errors."""
    latency = storm_result["latency_ms"]
    p95, p99, errors = latency["p95"], latency["p99"], storm_result["errors"]
    return [
        {"target": "p95 <= 25 ms", "measured": p95, "met": p95 is not None and p95 <= P95_MS},
        {"target": "p99 <= 100 ms", "measured": p99, "met": p99 is not None and p99 <= P99_MS},
        {"target": "zero errors after the server is back", "measured": errors, "met": errors == 0},
    ]


def run(backend: str, plan: Plan) -> dict[str, Any]:
    """A fresh database and server, the fleet, one outage."""
    load = [round(x, 2) for x in os.getloadavg()]
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-storm-") as workdir,
        database(backend) as url,
    ):
        log(f"reconnect storm ({backend}): {plan.devices:,} devices, {plan.outage:g}s outage")
        began = time.monotonic()
        try:
            result = _run_loop(measure(Path(workdir), url, plan))
        except (httpx.HTTPError, RuntimeError):
            log((Path(workdir) / "server.log").read_text(errors="replace")[-3000:])
            raise
    return {
        "backend": backend,
        "plan": {
            "devices": plan.devices,
            "interval": plan.interval,
            "watch_timeout": plan.watch_timeout,
            "outage": plan.outage,
        },
        **result,
        "targets": targets(result["storm"]),
        "load_average_before": load,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - began, 1),
    }


def _run_loop(work: Any) -> dict[str, Any]:
    # The simulator's own event loop, as `signalbeam sim` runs it (uvloop when installed).
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result: dict[str, Any] = runner.run(work)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse, run, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.reconnect_storm", description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0, help="sync interval (seconds)")
    parser.add_argument("--watch-timeout", type=float, default=60.0, help="seconds a watch is held")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the server is down")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="1,000 devices, a 15 s outage")
    args = parser.parse_args(argv)
    plan = Plan(args.devices, args.interval, args.outage, watch_timeout=args.watch_timeout)
    if args.quick:
        plan = Plan(min(args.devices, 1000), min(args.interval, 15.0), min(args.outage, 15.0))
    raise_file_limit()
    try:
        result = run(args.backend, plan)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    storm_result = result["storm"]
    back = storm_result["back"]
    log(
        f"  back: 50% {back['p50_seconds']}s, 95% {back['p95_seconds']}s, all "
        f"{back['all_seconds']}s; sync p95 {storm_result['latency_ms']['p95']} ms, p99 "
        f"{storm_result['latency_ms']['p99']} ms, {storm_result['errors']} errors"
    )
    return emit(f"reconnect_storm-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
