"""Dashboard fleet page with 10,000 devices: how long the server takes to render each view.

`python -m bench.web_fleet [--devices 10000] [--backend sqlite|postgres] [--rounds 30]`

Devices enroll and sync once through the real device API (labels spread over sites and
environments), then one signed-in session asks for each view of the fleet page in turn on a
keep-alive loopback connection, so the time measured is almost all server time. JSON goes to
stdout and to bench/results/web_fleet-<backend>.json. Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Server, Skip, database, emit, log, run_server

SITES = ("oslo", "bergen", "trondheim", "stavanger", "tromso")
ENVS = ("prod", "staging")
VIEWS = {
    "full page, first page": "/",
    "full page, page 100": "/?page=100",
    "table, sorted by last seen": "/fleet/table?sort=-last_seen",
    "table, online only": "/fleet/table?presence=online",
    "table, selector site=oslo,env=prod": "/fleet/table?selector=site%3Doslo%2Cenv%3Dprod",
    "table, free text": "/fleet/table?q=dev-0042",
    "table, last page": "/fleet/table?page=200",
    "counts only": "/fleet/counts",
}


async def _enroll_one(client: httpx.AsyncClient, token: str, index: int) -> None:
    device_id = f"dev-{index:05d}"
    labels = {"site": SITES[index % len(SITES)], "env": ENVS[index % len(ENVS)]}
    body = {"token": token, "device_id": device_id, "labels": labels}
    response = await client.post("/api/device/v1/enroll", json=body)
    response.raise_for_status()
    credential = response.json()["credential"]
    heartbeat = {
        "cpu_percent": index % 100,
        "memory_percent": 40.0,
        "disks": [{"mount": "/", "percent": 55.0}],
    }
    sync = await client.post(
        "/api/device/v1/sync",
        json={"heartbeat": heartbeat},
        headers={"Authorization": f"Bearer {credential}"},
    )
    sync.raise_for_status()


async def seed(server: Server, devices: int, concurrency: int = 16) -> float:
    """Enroll and sync `devices` devices; returns the seconds it took."""
    token = server.enrollment_token()
    started = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(devices):
        queue.put_nowait(index)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await _enroll_one(client, token, queue.get_nowait())

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.monotonic() - started


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    """A dashboard session through the login form, signed in with the admin's API token."""
    page = await client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, "no CSRF field on the login page"
    response = await client.post("/login", data={"csrf": match.group(1), "token": token})
    assert response.status_code == 303, response.text


async def measure(server: Server, rounds: int) -> dict[str, Any]:
    """Milliseconds per view: median, p95 and max over `rounds` requests each."""
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await sign_in(client, server.admin_token)
        for name, path in VIEWS.items():
            await client.get(path)  # warm caches and prepared statements once
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
            times.sort()
            results[name] = {
                "path": path,
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                "max_ms": round(times[-1], 1),
                "bytes": len(response.content),
            }
            log(f"  {name:<40} median {results[name]['median_ms']:>7.1f} ms")
    return results


def run(backend: str, devices: int, rounds: int) -> dict[str, Any]:
    """Start a server on a fresh database, seed the fleet, measure every view."""
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-web-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, ["--sync-interval", "1h"]) as server,
    ):
        log(f"web fleet ({backend}): enrolling {devices} devices")
        seeded = asyncio.run(seed(server, devices))
        log(f"web fleet ({backend}): seeded in {seeded:.0f}s; measuring")
        try:
            views = asyncio.run(measure(server, rounds))
        except httpx.HTTPError:
            # The work dir goes away with the server; keep the reason it stopped answering.
            log(server.log_path.read_text(errors="replace")[-3000:])
            raise
    return {"backend": backend, "devices": devices, "rounds": rounds, "views": views}


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.web_fleet", description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    try:
        result = run(args.backend, args.devices, args.rounds)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"web_fleet-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
