"""Metric history: samples from syncs, queried by range and step, rolled up by retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from signalbeam.server.repositories.metrics import insert_samples
from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.retention import enforce
from tests.helpers import new_device, sync


async def test_samples_from_syncs_are_queryable(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi")
    for cpu in (20.0, 30.0):
        beat = {
            "cpu_percent": cpu,
            "memory_percent": 50.0,
            "disks": [{"mount": "/", "percent": 10.0}, {"mount": "/data", "percent": 90.0}],
        }
        assert (await sync(anon, credential, heartbeat=beat)).status_code == 200
    response = await client.get("/api/v1/devices/pi/metrics", params={"step": "1h"})
    assert response.status_code == 200, response.text
    series = response.json()
    assert series["step_seconds"] == 3600
    points = series["points"]
    assert sum(p["samples"] for p in points) == 3
    assert len(points) in (1, 2)  # two when the hour turns between syncs
    if len(points) == 1:
        assert points[0]["cpu"] == round((12.5 + 20 + 30) / 3, 3)
        assert points[0]["cpu_max"] == 30.0
        assert points[0]["disk_max"] == 90.0


async def test_range_and_step_validation(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi")
    now = datetime.now(UTC)
    reversed_range = {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()}
    assert (
        await client.get("/api/v1/devices/pi/metrics", params=reversed_range)
    ).status_code == 422
    too_fine = {"from": (now - timedelta(days=30)).isoformat(), "step": "1s"}
    response = await client.get("/api/v1/devices/pi/metrics", params=too_fine)
    assert response.status_code == 422 and response.json()["field"] == "step"


async def test_retention_rolls_up_old_samples_and_forgets_expired_rollups(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    await new_device(client, anon, "pi")
    device = (await client.get("/api/v1/devices/pi")).json()
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(hours=10)
    bucket = old - timedelta(seconds=old.timestamp() % 300)
    ancient = now - timedelta(days=40)
    async with runtime.sessions() as session:
        from sqlalchemy import select

        from signalbeam.server.db.models import Device

        pk = (
            await session.execute(select(Device.id).where(Device.device_id == device["device_id"]))
        ).scalar_one()
        rows = [
            {
                "tenant_id": 1,
                "device_pk": pk,
                "ts": bucket + timedelta(seconds=s),
                "cpu": cpu,
                "memory": None,
                "disk": None,
                "load1": None,
                "temperature": None,
            }
            for s, cpu in ((10, 10.0), (20, 20.0), (30, 60.0))
        ]
        rows.append(
            {
                "tenant_id": 1,
                "device_pk": pk,
                "ts": ancient,
                "cpu": 99.0,
                "memory": None,
                "disk": None,
                "load1": None,
                "temperature": None,
            }
        )
        await insert_samples(session, rows)
        await session.commit()

    assert await enforce(runtime, now=now) == 4
    window = {
        "from": (bucket - timedelta(minutes=1)).isoformat(),
        "to": (bucket + timedelta(minutes=6)).isoformat(),
        "step": "5m",
    }
    points = (await client.get("/api/v1/devices/pi/metrics", params=window)).json()["points"]
    assert [(p["samples"], p["cpu"], p["cpu_max"]) for p in points] == [(3, 30.0, 60.0)]

    # A late raw sample for the same bucket merges into the stored rollup, weighted.
    async with runtime.sessions() as session:
        late = {**rows[0], "ts": bucket + timedelta(seconds=40), "cpu": 70.0}
        await insert_samples(session, [late])
        await session.commit()
    assert await enforce(runtime, now=now) == 1
    points = (await client.get("/api/v1/devices/pi/metrics", params=window)).json()["points"]
    assert [(p["samples"], p["cpu"], p["cpu_max"]) for p in points] == [(4, 40.0, 70.0)]

    ancient_window = {
        "from": (ancient - timedelta(minutes=5)).isoformat(),
        "to": (ancient + timedelta(minutes=5)).isoformat(),
    }
    assert (await client.get("/api/v1/devices/pi/metrics", params=ancient_window)).json()[
        "points"
    ] == []
    recent = (await client.get("/api/v1/devices/pi/metrics")).json()["points"]
    assert sum(p["samples"] for p in recent) == 1, "raw samples inside the raw window are kept"
