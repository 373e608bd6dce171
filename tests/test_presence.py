"""Presence: silent devices go offline without any request, and come back on their next sync."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from signalbeam.server.app import create_app
from signalbeam.server.runtime import Runtime
from signalbeam.server.settings import ServerSettings
from signalbeam.server.workers.presence import sweep
from tests.helpers import new_device, sync


async def test_sweeper_marks_silent_devices_offline_and_sync_brings_them_back(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    quiet = await new_device(client, anon, "quiet")
    await new_device(client, anon, "chatty")
    threshold = runtime.settings.offline_after
    assert threshold == runtime.settings.sync_interval * 3

    just_inside = datetime.now(UTC) + threshold - timedelta(seconds=1)
    assert await sweep(runtime, runtime.ingestor, now=just_inside) == 0

    later = datetime.now(UTC) + threshold + timedelta(seconds=1)
    assert await sweep(runtime, runtime.ingestor, now=later) == 2
    offline = (await client.get("/api/v1/devices", params={"status": "offline"})).json()
    assert [d["device_id"] for d in offline["items"]] == ["chatty", "quiet"]
    assert await sweep(runtime, runtime.ingestor, now=later) == 0, "a transition is recorded once"

    assert (await sync(anon, quiet)).status_code == 200
    device = (await client.get("/api/v1/devices/quiet")).json()
    assert device["presence"] == "online"
    assert [e["type"] for e in device["events"]][:3] == [
        "device.online",
        "device.offline",
        "device.online",
    ]
    assert device["events"][1]["actor"] == "system:signalbeam"
    assert "no sync for" in device["events"][1]["message"]


async def test_new_devices_that_never_synced_stay_new(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.helpers import enroll, enrollment_token

    await enroll(anon, await enrollment_token(client), "unborn")
    assert await sweep(runtime, runtime.ingestor, now=datetime.now(UTC) + timedelta(days=1)) == 0
    assert (await client.get("/api/v1/devices/unborn")).json()["presence"] == "new"


async def test_sweeper_runs_on_its_own(tmp_path: Path, database_url: str) -> None:
    settings = ServerSettings(
        data_dir=tmp_path / "fast",
        database_url=database_url,
        sync_interval=timedelta(milliseconds=200),
        offline_after_missed=1,
        sweep_interval=timedelta(milliseconds=100),
        mdns=False,
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60):
        runtime: Runtime = application.state.runtime
        token = application.state.startup.admin_token
        transport = httpx.ASGITransport(app=application)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client,
            httpx.AsyncClient(transport=transport, base_url="http://t") as anon,
        ):
            subscription = runtime.bus.subscribe(1)
            await new_device(client, anon, "fades")
            seen = []
            while "device.offline" not in seen:
                event = await asyncio.wait_for(subscription.get(), 10)
                assert event is not None
                seen.append(event["type"])
            subscription.close()
            assert seen[-2:] == ["device.online", "device.offline"]
            device = (await client.get("/api/v1/devices/fades")).json()
            assert device["presence"] == "offline"
