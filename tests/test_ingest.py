"""Group commit: many concurrent syncs share a transaction, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from sqlalchemy import func, select

from signalbeam.server.db.models import MetricSample
from signalbeam.server.runtime import Runtime
from tests.conftest import start_server, stop_server
from tests.helpers import enroll, enrollment_token, new_device, sync


async def all_pending(runtime: Runtime, count: int) -> None:
    """Yield to the event loop until `count` syncs wait in the ingestor."""
    while runtime.ingestor.pending < count:  # noqa: ASYNC110 - polls state owned by this loop
        await asyncio.sleep(0)


async def test_concurrent_syncs_share_one_transaction(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credentials = [await new_device(client, anon, f"pi-{i}") for i in range(40)]
    before = runtime.ingestor.batches
    # Hold the writer so every request is queued before the first commit can finish.
    async with runtime.ingestor.lock:
        requests = [asyncio.create_task(sync(anon, c)) for c in credentials]
        await asyncio.wait_for(all_pending(runtime, len(credentials)), timeout=30)
    responses = await asyncio.gather(*requests)
    assert all(r.status_code == 200 for r in responses)
    assert runtime.ingestor.batches - before <= 2, "40 syncs must not cost 40 transactions"
    async with runtime.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(MetricSample))
    assert stored == 80  # one sample from each device's first sync, one from this round


async def test_acknowledged_syncs_survive_a_crash(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path / "srv", ["--database-url", database_url])
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with (
            httpx.AsyncClient(base_url=server.url, headers=headers) as admin,
            httpx.AsyncClient(base_url=server.url) as anon,
        ):
            credential = await enroll(anon, await enrollment_token(admin), "crashy")
            acknowledged = 0
            for cpu in range(25):
                response = await sync(anon, credential, heartbeat={"cpu_percent": float(cpu)})
                acknowledged += response.status_code == 200
    finally:
        stop_server(server, signal.SIGKILL)
    assert acknowledged == 25
    restarted = start_server(tmp_path / "srv", ["--database-url", database_url])
    try:
        async with httpx.AsyncClient(base_url=restarted.url, headers=headers) as admin:
            series = (
                await admin.get("/api/v1/devices/crashy/metrics", params={"step": "1d"})
            ).json()
    finally:
        stop_server(restarted)
    assert sum(p["samples"] for p in series["points"]) == 25
