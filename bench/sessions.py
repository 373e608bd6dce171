"""Sessions: command round trips, log follow latency and memory with a watching fleet online.

`python -m bench.sessions [--devices 1000,10000] [--backend sqlite|postgres] [--quick]`

One real server; `signalbeam sim` processes bring simulated devices online, each holding a
watch that offers it sessions, and answering them over its own WebSocket like an agent. For
each fleet size (the second size adds a second simulator process):

- online: seconds to enroll the devices added (server-bound, about 100/s on SQLite here) and
  until all of them were online, with server RSS per watching device (RSS delta over them);
- idle: CPU at rest;
- exec: POST :exec `uptime` -> attach -> `exit` received, sequential and concurrent;
- follow: K followed logs held open at once; each line's delay from the stamp the simulated
  device wrote in it to the operator reading it, and server RSS per open session;
- action: a device action (restart-agent) round trip, POST -> the device's answer -> done,
  one at a time, then one action over every device of the first simulator's selector.

CPU is process CPU from each process's own CPU time (100 = one core): the server, and the
simulator processes beside it. JSON on stdout (and bench/results/sessions-<backend>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.__main__ import raise_file_limit
from bench.harness import Server, Skip, database, emit, log, run_server
from bench.session_ops import (
    LOG_INTERVAL,
    SYNC_INTERVAL,
    Follows,
    Meter,
    Operator,
    Simulator,
    concurrent,
    online,
    rss,
    sequential,
)
from signalbeam.sim.stats import LatencyRecorder

# Enrolling is server-bound: one write transaction per device, about 110/s on SQLite on an idle
# 2-core machine, 60/s beside a test suite and under 21/s at load average 25-37 (credential
# hashing is one HMAC, and more simulator concurrency does not help). Allow 15/s, then the ramp
# and two minutes.
ENROLL_RATE_FLOOR = 15.0
FIRST_SYNCS_PER_SECOND = 200.0
START_TIMEOUT = 60.0
MB = 2**20


@dataclass(frozen=True)
class Plan:
    """How much to measure at each fleet size."""

    sizes: tuple[int, ...] = (1000, 10_000)
    sequential: int = 200
    concurrent: int = 100
    width: int = 20
    follows: int = 100
    follow_seconds: float = 5.0
    idle_seconds: float = 5.0
    actions: int = 100


@dataclass
class Bench:
    """The server, its API, the operator and the simulators running so far."""

    server: Server
    api: httpx.AsyncClient
    operator: Operator
    workdir: Path
    token: str
    simulators: list[Simulator]

    def meter(self) -> Meter:
        """CPU of the server and of every simulator process from now on."""
        sims = [s.process.pid for s in self.simulators if s.process is not None]
        return Meter({"server": [self.server.process.pid], "simulator": sims})

    def device_ids(self) -> list[str]:
        """Every simulated device online so far."""
        return [f"{s.prefix}{i:05d}" for s in self.simulators for i in range(s.devices)]

    async def server_rss(self) -> int:
        """The server's RSS now (bytes, median of a few readings)."""
        return await asyncio.to_thread(rss, self.server.process.pid)


async def grow(bench: Bench, total: int) -> dict[str, Any]:
    """Add a simulator so `total` devices are online and watching; what that cost the server."""
    before, have = await bench.server_rss(), len(bench.device_ids())
    added = total - have
    sim = Simulator(bench.server, bench.token, added, f"s{len(bench.simulators)}-", bench.workdir)
    bench.simulators.append(sim)
    # First syncs at about 200/s: each also opens a watch, and faster ramps on SQLite queued
    # first syncs for 10-20 s (9,000 devices at 500/s), which is start-up, not sessions.
    ramp = max(5.0, added / FIRST_SYNCS_PER_SECOND)
    began = time.monotonic()
    sim.start(ramp=ramp)
    meter = bench.meter()
    try:
        enrolled = await sim.enrolled(added / ENROLL_RATE_FLOOR + 60)
        seconds = await online(bench.api, sim.label, added, ramp + 120)
    except RuntimeError:
        log(sim.tail())
        raise
    enrolling = enrolled - began
    # Each device sends its watch right after its first sync: give the last ones time to land
    # before reading RSS (the server exposes no watcher count to wait for instead).
    await asyncio.sleep(2.0)
    cpu = meter.read()
    after = await bench.server_rss()
    log(
        f"  {added} enrolled in {enrolling:.0f}s, {total} online {seconds:.0f}s later; "
        f"server RSS {before / MB:.0f} -> {after / MB:.0f} MB"
    )
    return {
        "devices": total,
        "added": added,
        "enroll_seconds": round(enrolling, 1),
        "enrolled_per_second": round(added / enrolling, 1),
        "ramp_seconds": ramp,
        "online_after_enrolled_seconds": round(seconds, 1),
        "server_rss_mb": round(after / MB, 1),
        "rss_kb_per_watching_device": round((after - before) / added / 1024, 2),
        "bring_online": cpu,
    }


async def idle(bench: Bench, seconds: float) -> dict[str, Any]:
    """CPU with every device watching and nothing asked."""
    meter = bench.meter()
    await asyncio.sleep(seconds)
    return {"seconds": seconds, **meter.read()}


def _latency(recorder: LatencyRecorder, meter: Meter, began: float) -> dict[str, Any]:
    seconds = time.monotonic() - began
    return {
        "sessions": recorder.count,
        "per_second": round(recorder.count / seconds, 1),
        "latency_ms": recorder.summary_ms(),
        **meter.read(),
    }


async def execs(bench: Bench, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Command round trips, one at a time and `width` at a time, on random devices."""
    ids = bench.device_ids()
    meter, began = bench.meter(), time.monotonic()
    one = await sequential(bench.operator, rng.choices(ids, k=plan.sequential))
    alone = _latency(one, meter, began)
    meter, began = bench.meter(), time.monotonic()
    many = await concurrent(bench.operator, rng.sample(ids, plan.concurrent), plan.width)
    together = {**_latency(many, meter, began), "concurrency": plan.width}
    log(
        f"  exec round trip: p50 {alone['latency_ms']['p50']} ms, p99 "
        f"{alone['latency_ms']['p99']} ms alone; p99 {together['latency_ms']['p99']} ms "
        f"{plan.width} at a time ({together['per_second']}/s)"
    )
    return {"sequential": alone, "concurrent": together}


async def follows(bench: Bench, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """K followed logs open at once: delivery delay of each line, server RSS per session."""
    before = await bench.server_rss()
    state, stop = Follows(bench.operator, plan.follows), asyncio.Event()
    ids = rng.sample(bench.device_ids(), plan.follows)
    tasks = [asyncio.ensure_future(state.follow(i, stop)) for i in ids]
    try:
        await asyncio.wait_for(state.all_flowing.wait(), START_TIMEOUT)
        meter = bench.meter()
        state.start_measuring()
        await asyncio.sleep(plan.follow_seconds / 2)
        held = await bench.server_rss()
        await asyncio.sleep(plan.follow_seconds / 2)
        cpu = meter.read()
        state.stop_measuring()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    p95 = state.latency.summary_ms()["p95"]
    log(f"  {plan.follows} follows: line delay p95 {p95} ms; RSS +{(held - before) / MB:.1f} MB")
    return {
        "sessions": plan.follows,
        "flowing": state.flowing,
        "seconds": plan.follow_seconds,
        "log_interval": LOG_INTERVAL,
        "line_delay_ms": state.latency.summary_ms(),
        "server_rss_mb_before": round(before / MB, 1),
        "server_rss_mb_held": round(held / MB, 1),
        "rss_kb_per_open_session": round((held - before) / plan.follows / 1024, 1),
        **cpu,
    }


async def actions(bench: Bench, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Action round trips one at a time, then one action over a whole simulator's devices."""
    recorder, meter, began = LatencyRecorder(), bench.meter(), time.monotonic()
    for device_id in rng.choices(bench.device_ids(), k=plan.actions):
        seconds = await bench.operator.action_round_trip(device_id)
        if seconds is not None:
            recorder.record(seconds)
    alone = _latency(recorder, meter, began)
    first = bench.simulators[0]
    seconds, done = await bench.operator.bulk_action(first.label)
    latency = alone["latency_ms"]
    log(
        f"  action round trip: p50 {latency['p50']} ms, p99 {latency['p99']} ms; "
        f"{done} of {first.devices} devices in one action in {seconds:.1f}s"
    )
    return {**alone, "bulk": {"devices": first.devices, "done": done, "seconds": round(seconds, 2)}}


async def fleet_size(bench: Bench, total: int, plan: Plan) -> dict[str, Any]:
    """Everything measured at one fleet size."""
    rng = random.Random(total)
    entry = await grow(bench, total)
    entry["idle"] = await idle(bench, plan.idle_seconds)
    entry["exec"] = await execs(bench, plan, rng)
    entry["follow"] = await follows(bench, plan, rng)
    entry["action"] = await actions(bench, plan, rng)
    return entry


async def measure(server: Server, workdir: Path, plan: Plan) -> dict[str, Any]:
    """Every fleet size in turn on one server; the simulators' own account at the end."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    limits = httpx.Limits(max_connections=plan.follows + plan.width + 8)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=60, limits=limits
    ) as api:
        (await api.put("/api/v1/remote-access", json={"enabled": True})).raise_for_status()
        operator = Operator(server, api)
        bench = Bench(server, api, operator, workdir, server.enrollment_token(), [])
        idle_rss = await bench.server_rss()
        try:
            sizes = [await fleet_size(bench, total, plan) for total in plan.sizes]
        finally:
            await asyncio.to_thread(_stop_all, bench.simulators)
    return {
        "server_rss_mb_no_devices": round(idle_rss / MB, 1),
        "sizes": sizes,
        "operator_errors": operator.errors,
        "simulators": [_sim_account(s) for s in bench.simulators],
    }


def _stop_all(simulators: list[Simulator]) -> None:
    for sim in simulators:
        sim.stop()


def _sim_account(sim: Simulator) -> dict[str, Any]:
    keys = ("devices", "online", "sessions_answered", "sessions_failed", "syncs_failed", "errors")
    return {key: sim.summary.get(key) for key in keys}


def run(backend: str, plan: Plan) -> dict[str, Any]:
    """One server on a fresh database, measured at every size of the plan."""
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-sessions-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, ["--sync-interval", SYNC_INTERVAL]) as server,
    ):
        log(f"sessions ({backend}): fleets of {', '.join(f'{n:,}' for n in plan.sizes)}")
        began = time.monotonic()
        try:
            result = asyncio.run(measure(server, Path(workdir), plan))
        except (httpx.HTTPError, RuntimeError, TimeoutError):
            log(server.log_path.read_text(errors="replace")[-3000:])
            raise
    return {"backend": backend, **result, "seconds": round(time.monotonic() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    """Parse, run, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.sessions", description=__doc__)
    parser.add_argument("--devices", default="1000,10000", help="fleet sizes, comma-separated")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="shorter idle and follow windows")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(n) for n in args.devices.split(",")))
    plan = Plan(sizes=sizes)
    if args.quick:
        plan = Plan(sizes=sizes, follow_seconds=3.0, idle_seconds=3.0)
    raise_file_limit()
    try:
        result = run(args.backend, plan)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"sessions-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
