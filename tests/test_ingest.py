"""Group commit: many concurrent syncs share a transaction, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from signalbeam.protocol.device_v1 import Heartbeat, ReportedState
from signalbeam.server.db.models import Device, MetricSample
from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.ingest import SyncRecord, new_samples
from signalbeam.server.workers.presence import sweep
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
    async with runtime.ingestor.gate.exclusive():
        requests = [asyncio.create_task(sync(anon, c)) for c in credentials]
        await asyncio.wait_for(all_pending(runtime, len(credentials)), timeout=30)
    responses = await asyncio.gather(*requests)
    assert all(r.status_code == 200 for r in responses)
    # Each writer commits what it collected before the hold and then the rest: two batches.
    batches = runtime.ingestor.batches - before
    assert batches <= 2 * runtime.ingestor.writers, "40 syncs must not cost 40 transactions"
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


async def record_for(
    runtime: Runtime, device_id: str, seen_at: datetime, reported: ReportedState
) -> SyncRecord:
    """A sync record for an enrolled device, as the sync route would hand it over."""
    async with runtime.sessions() as session:
        device = (
            await session.execute(select(Device).where(Device.device_id == device_id))
        ).scalar_one()
    return SyncRecord(
        device_pk=device.id,
        tenant_id=device.tenant_id,
        device_id=device_id,
        seen_at=seen_at,
        heartbeat=Heartbeat(cpu_percent=10.0),
        reported=reported,
    )


async def test_an_older_sync_committed_late_keeps_the_newer_state(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    await new_device(client, anon, "pi")
    now = datetime.now(UTC) + timedelta(seconds=5)
    newer = await record_for(
        runtime, "pi", now, ReportedState(status="running", bundle="web", version="2")
    )
    older = await record_for(
        runtime,
        "pi",
        now - timedelta(seconds=3),
        ReportedState(status="failed", reason="image pull failed", bundle="web", version="1"),
    )
    # Two writers can commit in either order; the later commit here holds the older sync.
    await runtime.ingestor.write([newer])
    await runtime.ingestor.write([older])
    device = (await client.get("/api/v1/devices/pi")).json()
    assert device["reported"]["status"] == "running"
    assert device["reported"]["version"] == "2"
    assert datetime.fromisoformat(device["last_seen_at"]) == now
    async with runtime.sessions() as session:
        samples = await session.scalar(
            select(func.count())
            .select_from(MetricSample)
            .where(MetricSample.device_pk == newer.device_pk)
        )
    assert samples == 3, "the older sync's metrics still count (enrolment sync + these two)"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_batches_holding_the_same_device_record_it_online_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    """PostgreSQL only: it is the backend with several writers (SQLite has one)."""
    assert runtime.ingestor.writers > 1
    await new_device(client, anon, "flaky")
    later = datetime.now(UTC) + runtime.settings.offline_after + timedelta(seconds=1)
    assert await sweep(runtime, runtime.ingestor, now=later) == 1
    first = await record_for(runtime, "flaky", later + timedelta(seconds=1), ReportedState())
    second = await record_for(runtime, "flaky", later + timedelta(seconds=2), ReportedState())
    await asyncio.gather(runtime.ingestor.write([first]), runtime.ingestor.write([second]))
    device = (await client.get("/api/v1/devices/flaky")).json()
    assert device["presence"] == "online"
    assert [e["type"] for e in device["events"]][:3] == [
        "device.online",
        "device.offline",
        "device.online",
    ]
    assert datetime.fromisoformat(device["last_seen_at"]) == second.seen_at


async def test_a_sample_seen_before_by_seq_is_not_stored_again() -> None:
    def record(pk: int, seq: int | None, queued: bool = False) -> SyncRecord:
        return SyncRecord(
            device_pk=pk,
            tenant_id=1,
            device_id=f"d{pk}",
            seen_at=datetime.now(UTC),
            heartbeat=Heartbeat(),
            reported=ReportedState(),
            heartbeat_seq=seq,
            heartbeat_queued=queued,
        )

    marks = {1: 10, 2: 0, 3: 5}
    batch = [record(1, 10), record(1, 11), record(1, 11), record(2, None), record(3, 9, True)]
    fresh = new_samples(batch, marks)
    # Seq 10 was stored through /telemetry, the second 11 is the first again; no seq (an older
    # agent) is always stored; a queued heartbeat comes through /telemetry, not here.
    assert [(r.device_pk, r.heartbeat_seq) for r in fresh] == [(1, 11), (2, None)]
    assert marks == {1: 11, 2: 0, 3: 5}
