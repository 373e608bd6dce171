"""What a Prometheus scrape of GET /metrics costs the server with 10,000 devices.

`python -m bench.metrics_scrape [--devices 10000] [--backend sqlite|postgres] [--rounds 8]`

The devices are written straight into the server's database (one multi-row INSERT per
1,000; enrolling 10,000 through the API takes minutes and is measured elsewhere), spread
over 80 bundle versions (so the cap of 50 applies), two reported statuses and 90 % online.
Then GET /metrics with the admin's token, as Prometheus would: `cold` scrapes wait out the
fleet cache, so each runs the aggregate queries; `cached` ones come within it. For each:
milliseconds on a loopback keep-alive connection and the server process's CPU milliseconds
(user + system, from /proc). JSON to stdout and bench/results/metrics_scrape-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import insert

from bench.harness import Server, Skip, database, emit, log, run_server
from signalbeam.server.db.models import Device
from signalbeam.server.db.session import create_engine
from signalbeam.server.observability.collectors import FLEET_CACHE_SECONDS

VERSIONS = 80
CHUNK = 1000


def device_rows(start: int, count: int, now: datetime) -> list[dict[str, Any]]:
    """Rows for devices start..start+count of the default tenant."""
    return [
        {
            "tenant_id": 1,
            "device_id": f"dev-{i:05d}",
            "name": f"dev-{i:05d}",
            "credential_rotated_at": now,
            "facts": {},
            "labels": {"bench": "yes"},
            "presence": "offline" if i % 10 == 0 else "online",
            "last_seen_at": now,
            "metrics": {"cpu_percent": i % 100, "memory_percent": 40.0, "disk_percent": 55.0},
            "desired_state": {},
            "reported_state": {},
            "reported_bundle": "kiosk",
            "reported_version": f"1.0.{i % VERSIONS}",
            "reported_status": "degraded" if i % 50 == 0 else "running",
            "enrolled_at": now,
        }
        for i in range(start, start + count)
    ]


async def seed(url: str, devices: int) -> None:
    """Insert the fleet directly, in chunks."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        for start in range(0, devices, CHUNK):
            async with engine.begin() as connection:
                count = min(CHUNK, devices - start)
                await connection.execute(insert(Device), device_rows(start, count, now))
    finally:
        await engine.dispose()


def _cpu_ms(process: psutil.Process) -> float:
    times = process.cpu_times()
    return (times.user + times.system) * 1000


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 1),
        "median": round(statistics.median(ordered), 1),
        "max": round(ordered[-1], 1),
    }


async def measure(server: Server, rounds: int) -> dict[str, Any]:
    """Cold and cached scrapes: wall and server CPU milliseconds, and the exposition's size."""
    process = psutil.Process(server.process.pid)
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    result: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        await client.get("/metrics")  # prepared statements, imports
        for kind in ("cold", "cached"):
            walls, cpus = [], []
            for _ in range(rounds):
                if kind == "cold":
                    await asyncio.sleep(FLEET_CACHE_SECONDS + 0.2)
                cpu, started = _cpu_ms(process), time.perf_counter()
                response = await client.get("/metrics")
                walls.append((time.perf_counter() - started) * 1000)
                cpus.append(_cpu_ms(process) - cpu)
                response.raise_for_status()
            result[kind] = {"wall_ms": _summary(walls), "server_cpu_ms": _summary(cpus)}
            log(f"  {kind:<7} wall {result[kind]['wall_ms']} cpu {result[kind]['server_cpu_ms']}")
        text = response.text
    result["bytes"] = len(text)
    result["series"] = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return result


def run(backend: str, devices: int, rounds: int) -> dict[str, Any]:
    """Start a server on a fresh database, write the fleet into it, scrape."""
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-metrics-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, ["--sync-interval", "1h"]) as server,
    ):
        db_url = url or f"sqlite+aiosqlite:///{(server.data_dir / 'signalbeam.db').resolve()}"
        log(f"metrics scrape ({backend}): writing {devices} devices")
        asyncio.run(seed(db_url, devices))
        scrapes = asyncio.run(measure(server, rounds))
    return {"backend": backend, "devices": devices, "rounds": rounds, "scrapes": scrapes}


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_scrape", description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        result = run(args.backend, args.devices, args.rounds)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"metrics_scrape-{args.backend}", result)


if __name__ == "__main__":
    raise SystemExit(main())
