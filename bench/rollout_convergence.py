"""Rollout convergence: how long a simulated fleet takes to finish a rollout, or to roll back.

`python -m bench.rollout_convergence [--devices 1000] [--backend sqlite|postgres] [--soak 5]`

One real server; the simulator's virtual devices speak the real device API, hold watches
and "apply" a bundle in about a second. Two runs on the same server:

1. healthy: every device applies fine; the time from creating the rollout (default waves
   1, 10%, 50%, 100%) to `completed`.
2. failing: a second fleet whose devices fail half their updates; the time from the failure
   report that trips the threshold (its `rollout.device_failed` event) to the rollout's
   `rollout.rolled_back` event, and until every changed device reports its old state again.

JSON on stdout (and bench/results/rollout_convergence-<backend>.json). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Server, Skip, database, emit, log, run_server
from signalbeam.sim.device import Behaviour
from signalbeam.sim.fleet import Fleet, FleetConfig

POLL_SECONDS = 0.1
BUNDLE = "bench-app"


def bundle(version: str) -> dict[str, Any]:
    """A native-app bundle; the simulator never downloads it, it only pretends to apply it."""
    return {
        "name": BUNDLE,
        "version": version,
        "apps": [
            {
                "name": "relay",
                "artifact": {"url": "http://127.0.0.1:9/relay.tar.gz", "sha256": "0" * 64},
                "command": ["./relay"],
            }
        ],
    }


def fleet(server: Server, token: str, devices: int, fail_rate: float, prefix: str) -> FleetConfig:
    behaviour = Behaviour(interval=5.0, watch=True, fail_rate=fail_rate, apply_time=1.0)
    return FleetConfig(
        server=server.url,
        token=token,
        devices=devices,
        behaviour=behaviour,
        labels={"fleet": prefix.strip("-")},
        prefix=prefix,
        state_file=server.data_dir / f"{prefix}sim.json",
        seed=7,
    )


async def wait_for(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


async def online(api: httpx.AsyncClient, label: str, count: int) -> None:
    async def check() -> bool:
        params = {"selector": label, "status": "online", "limit": 1}
        return int((await api.get("/api/v1/devices", params=params)).json()["total"]) >= count

    await wait_for(check, f"{count} devices ({label}) online", 300)


async def create(api: httpx.AsyncClient, version: str, label: str, soak: float) -> int:
    body = {"bundle": BUNDLE, "version": version, "selector": label, "soak": f"{soak:g}s"}
    response = await api.post("/api/v1/rollouts", json=body)
    response.raise_for_status()
    return int(response.json()["id"])


async def finished(api: httpx.AsyncClient, rollout: int, timeout: float) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        detail: dict[str, Any] = (await api.get(f"/api/v1/rollouts/{rollout}")).json()
        return detail if detail["status"] not in ("running", "paused", "pending") else None

    result: dict[str, Any] = await wait_for(check, f"rollout {rollout} to end", timeout)
    return result


async def event_time(api: httpx.AsyncClient, kind: str, rollout: int, first: bool) -> datetime:
    response = await api.get("/api/v1/events", params={"type": kind, "limit": 1000})
    times = [
        datetime.fromisoformat(e["created_at"])
        for e in response.json()["items"]
        if (e.get("data") or {}).get("rollout_id") == rollout
    ]
    if not times:
        raise RuntimeError(f"no {kind} event for rollout {rollout}")
    return min(times) if first else max(times)


async def healthy_run(
    api: httpx.AsyncClient, server: Server, token: str, devices: int, soak: float
) -> dict[str, Any]:
    async with Fleet(fleet(server, token, devices, 0.0, "ok-")):
        await online(api, "fleet=ok", devices)
        started = time.monotonic()
        rollout = await create(api, "1.0.0", "fleet=ok", soak)
        done = await finished(api, rollout, 600)
        seconds = time.monotonic() - started
    log(f"  healthy: {done['status']} in {seconds:.1f}s")
    return {
        "devices": devices,
        "soak_seconds": soak,
        "status": done["status"],
        "create_to_completed_seconds": round(seconds, 2),
        "waves": [w.get("devices") for w in done.get("waves", [])],
    }


async def failing_run(
    api: httpx.AsyncClient, server: Server, token: str, devices: int, soak: float
) -> dict[str, Any]:
    async with Fleet(fleet(server, token, devices, 0.5, "bad-")):
        await online(api, "fleet=bad", devices)
        rollout = await create(api, "1.0.0", "fleet=bad", soak)
        done = await finished(api, rollout, 600)
        ended = time.monotonic()
        tripped = await event_time(api, "rollout.device_failed", rollout, first=False)
        rolled_back = await event_time(api, "rollout.rolled_back", rollout, first=True)
        # Every device the rollout changed is told to go back; wait until they all report it.
        await wait_for(
            lambda: _all_reverted(api, "fleet=bad"), "devices to report the old state", 120
        )
        reverted = time.monotonic() - ended
    seconds = (rolled_back - tripped).total_seconds()
    log(f"  failing: {done['status']}, rolled back {seconds:.2f}s after the tripping failure")
    return {
        "devices": devices,
        "fail_rate": 0.5,
        "status": done["status"],
        "reason": done.get("reason"),
        "trip_to_rolled_back_seconds": round(seconds, 2),
        "rolled_back_to_devices_reverted_seconds": round(reverted, 2),
        "failed": done.get("counts", {}).get("failed"),
    }


async def _all_reverted(api: httpx.AsyncClient, label: str) -> bool:
    """Every device has reported the generation it was last given (the revert, if any)."""
    params = {"selector": label, "limit": 1000}
    items = (await api.get("/api/v1/devices", params=params)).json()["items"]
    return all(i["reported_generation"] >= i["desired_generation"] for i in items)


async def measure(server: Server, devices: int, soak: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:
        (await api.post("/api/v1/bundles", json=bundle("1.0.0"))).raise_for_status()
        token = server.enrollment_token()
        healthy = await healthy_run(api, server, token, devices, soak)
        failing = await failing_run(api, server, token, max(100, devices // 5), soak)
    return {"healthy": healthy, "failing": failing}


def run(backend: str, devices: int, soak: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-rollout-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, ["--sync-interval", "5s"]) as server,
    ):
        log(f"rollout convergence ({backend}): {devices} simulated devices")
        try:
            result = asyncio.run(measure(server, devices, soak))
        except (httpx.HTTPError, RuntimeError):
            log(server.log_path.read_text(errors="replace")[-3000:])
            raise
    return {"backend": backend, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rollout_convergence", description=__doc__
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--soak", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        result = run(args.backend, args.devices, args.soak)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"rollout_convergence-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
