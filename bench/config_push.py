"""Config push: from a config change to every device of a group reporting it applied.

`python -m bench.config_push [--devices 1000] [--rounds 3] [--backend sqlite|postgres]`

One real server and a simulated fleet of watching devices (interval 10 s) running one bundle
through a dynamic group, in `signalbeam sim` processes of their own: with the fleet in this
process, its 1,000 devices took 90 % of a core and the rounds timed the simulator's lag. Each round changes one key of the group's config
(`PATCH /api/v1/config/groups/bench`), which gives every device a new desired generation with
a new signed config section, and polls the group's config status every 0.5 s until every
device reports the new digest applied. The simulator "applies" a config in 0.05-0.15 s, so
what is measured is the server's part (signing, writing 1,000 desired documents, waking the
watches) and the round trips, not a real unit's restart.

Measured per round: the PATCH's own latency, and seconds from sending it until 50, 95 and
100 % of the group reported `applied`; the server's and this process's (the simulator's) CPU
over the rounds. Target (issue #17): p95 <= 2 s with 1,000 devices changing at once.
JSON on stdout (and bench/results/config_push-<backend>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Server, Skip, database, emit, log, run_server
from bench.rollout_convergence import bundle, online, wait_for
from bench.session_ops import Meter, Simulator

# The status answer reads every device of the group (300-700 ms at 1,000 devices on SQLite),
# so polling faster would load the server it measures.
POLL_SECONDS = 0.5
GROUP = "bench"
STATUS = f"/api/v1/groups/{GROUP}/config/status"
# Two simulator processes: each stays well inside its core, beside the server on the other.
SIMULATORS = 2
SIM_OPTIONS = ["--interval", "10s", "--apply-time", "0.1s", "--ramp", "10s"]


def simulators(server: Server, devices: int) -> list[Simulator]:
    """The fleet split over processes, labelled fleet=cfg0, fleet=cfg1, ..."""
    token = server.enrollment_token()
    shares = [devices // SIMULATORS + (i < devices % SIMULATORS) for i in range(SIMULATORS)]
    return [
        Simulator(server, token, share, f"cfg{i}-", server.data_dir, extra=SIM_OPTIONS)
        for i, share in enumerate(shares)
    ]


def selector(fleet: list[Simulator]) -> str:
    return "fleet in (" + ", ".join(sim.label.split("=", 1)[1] for sim in fleet) + ")"


async def prepare(api: httpx.AsyncClient, devices: int, fleet: list[Simulator]) -> None:
    """The group, its bundle, and every device running it."""
    (await api.post("/api/v1/bundles", json=bundle("1.0.0"))).raise_for_status()
    group = {"name": GROUP, "selector": selector(fleet)}
    (await api.post("/api/v1/groups", json=group)).raise_for_status()
    assigned = await api.post(
        f"/api/v1/bundles/{bundle('1.0.0')['name']}/versions/1.0.0/assign", json={"group": GROUP}
    )
    assigned.raise_for_status()
    await wait_for(lambda: _applied(api, devices), "the first config state", 300)


async def _applied(api: httpx.AsyncClient, devices: int) -> bool:
    counts = (await api.get(STATUS)).json()
    return int(counts.get("applied", 0)) + int(counts.get("none", 0)) >= devices


async def applied_count(api: httpx.AsyncClient) -> int:
    """The group's applied count; a kept-alive connection the server closed is tried again."""
    for attempt in range(3):
        try:
            return int((await api.get(STATUS)).json().get("applied", 0))
        except httpx.TransportError:
            if attempt == 2:
                raise
    return 0


async def one_round(api: httpx.AsyncClient, devices: int, value: str) -> dict[str, Any]:
    """Change one key and time how the group reports it applied."""
    started = time.monotonic()
    body = {"set": {"LOG_LEVEL": value}, "message": f"bench round {value}"}
    changed = await api.patch(f"/api/v1/config/groups/{GROUP}", json=body)
    changed.raise_for_status()
    answered = time.monotonic() - started
    marks: dict[str, float] = {}
    deadline = started + 120
    while time.monotonic() < deadline:
        applied = await applied_count(api)
        elapsed = time.monotonic() - started
        for name, share in (("p50", 0.5), ("p95", 0.95), ("all", 1.0)):
            if name not in marks and applied >= share * devices:
                marks[name] = round(elapsed, 2)
        if "all" in marks:
            break
        await asyncio.sleep(POLL_SECONDS)
    return {
        "patch_ms": round(answered * 1000, 1),
        "affected": changed.json().get("affected_devices"),
        **{f"{name}_seconds": marks.get(name) for name in ("p50", "p95", "all")},
    }


async def measure(server: Server, devices: int, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    fleet = simulators(server, devices)
    try:
        pids = [sim.start(ramp=10.0) for sim in fleet]
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:
            for sim in fleet:
                await online(api, sim.label, sim.devices)
            await prepare(api, devices, fleet)
            meter = Meter(
                {"server": [server.process.pid], "simulators": pids, "bench": [os.getpid()]}
            )
            results = []
            for index in range(rounds):
                result = await one_round(api, devices, f"level-{index}")
                log(f"  round {index + 1}: {result}")
                results.append(result)
            cpu = meter.read()
    finally:
        for sim in fleet:
            sim.stop()
    p95s = [r["p95_seconds"] for r in results if r["p95_seconds"] is not None]
    return {
        "devices": devices,
        "rounds": results,
        "worst_p95_seconds": max(p95s) if len(p95s) == rounds else None,
        **cpu,
    }


def run(backend: str, devices: int, rounds: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-config-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, ["--sync-interval", "10s"]) as server,
    ):
        log(f"config push ({backend}): {devices} simulated devices, {rounds} rounds")
        try:
            result = asyncio.run(measure(server, devices, rounds))
        except (httpx.HTTPError, RuntimeError):
            log(server.log_path.read_text(errors="replace")[-3000:])
            raise
    return {"backend": backend, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.config_push", description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    try:
        result = run(args.backend, args.devices, args.rounds)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"config_push-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
