"""A new boot id in a sync is a reboot: recorded once, a reboot asked for is done then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from signalbeam.protocol.device_v1 import Heartbeat, ReportedState
from signalbeam.server.db.models import Device
from signalbeam.server.repositories.devices import DeviceRepository
from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.ingest import SyncRecord
from tests.helpers import new_device, sync


async def rebooted(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    found = await client.get("/api/v1/events", params={"type": "device.rebooted"})
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_a_new_boot_id_is_a_reboot_and_the_first_is_not(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-1")
    assert (await sync(anon, credential, heartbeat={"boot_id": "aaaa1111-boot"})).status_code == 200
    shown = (await client.get("/api/v1/devices/pi-1")).json()
    assert shown["boot_id"] == "aaaa1111-boot"
    assert "boot_id" not in shown["metrics"], "a boot id is not a metric"
    await sync(anon, credential, heartbeat={"boot_id": "aaaa1111-boot"})
    await sync(anon, credential, heartbeat={"cpu_percent": 3.0})  # an older agent's heartbeat
    assert await rebooted(client) == []
    assert (await client.get("/api/v1/devices/pi-1")).json()["boot_id"] == "aaaa1111-boot"

    await sync(anon, credential, heartbeat={"boot_id": "bbbb2222-boot"})
    [event] = await rebooted(client)
    assert (
        event["message"] == "pi-1 rebooted (boot id aaaa1111 → bbbb2222); nobody asked for it here"
    )
    assert event["actor"] == "system:signalbeam"
    assert event["data"]["previous_boot_id"] == "aaaa1111-boot"
    assert event["data"]["requested_by"] is None
    shown = (await client.get("/api/v1/devices/pi-1")).json()
    assert (shown["boot_id"], shown["rebooting_since"]) == ("bbbb2222-boot", None)


def record(device: Device, boot_id: str, seen_at: datetime) -> SyncRecord:
    return SyncRecord(
        device_pk=device.id,
        tenant_id=device.tenant_id,
        device_id=device.device_id,
        seen_at=seen_at,
        heartbeat=Heartbeat(boot_id=boot_id),
        reported=ReportedState(),
    )


async def test_a_reboot_asked_for_is_done_by_the_new_boot_id_and_never_undone(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credential = await new_device(client, anon, "pi-1")
    await sync(anon, credential, heartbeat={"boot_id": "old-boot"})
    tenant = (await client.get("/api/v1/me")).json()["tenant_id"]
    async with runtime.sessions() as session:
        devices = DeviceRepository(session, tenant)
        device = await devices.get("pi-1")
        assert device is not None
        asked = datetime.now(UTC) - timedelta(seconds=42)
        await devices.set_reboot_requested(device.id, asked, "user:admin")
        await session.commit()
    assert (await client.get("/api/v1/devices/pi-1")).json()["rebooting_since"] is not None
    now = datetime.now(UTC)
    await runtime.ingestor.write([record(device, "new-boot", now)])
    # A batch holding an older sync (the old boot) that commits later changes nothing.
    await runtime.ingestor.write([record(device, "old-boot", now - timedelta(seconds=1))])
    [event] = await rebooted(client)
    assert (
        event["message"]
        == "pi-1 rebooted (boot id old-boot → new-boot), 42s after user:admin asked"
    )
    assert event["data"]["seconds"] >= 42
    shown = (await client.get("/api/v1/devices/pi-1")).json()
    assert (shown["boot_id"], shown["rebooting_since"]) == ("new-boot", None)
