"""Cordon and uncordon through the management API: planned, carried out, recorded, respected."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from signalbeam.server.workers.rollout_engine import step_rollout
from tests.helpers import new_device
from tests.test_bundles_api import BUNDLE, assign, push


async def action(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/actions", json=body)


async def fleet(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    for device_id, site in (("pi-1", "oslo"), ("pi-2", "oslo"), ("pi-3", "bergen")):
        await new_device(client, anon, device_id, {"site": site})


async def cordoned(client: httpx.AsyncClient) -> dict[str, bool]:
    items = (await client.get("/api/v1/devices")).json()["items"]
    return {d["device_id"]: d["cordoned"] for d in items}


async def test_a_plan_changes_nothing_and_the_run_reports_each_device(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    planned = await action(client, action="cordon", selector="site=oslo", plan=True)
    assert planned.status_code == 200, planned.text
    assert [(d["device_id"], d["status"]) for d in planned.json()["devices"]] == [
        ("pi-1", "planned"),
        ("pi-2", "planned"),
    ]
    assert not any((await cordoned(client)).values())
    assert (await client.post("/api/v1/devices/pi-1:cordon")).json()["devices"][0][
        "status"
    ] == "done"
    ran = (await action(client, action="cordon", selector="site=oslo")).json()["devices"]
    assert [(d["device_id"], d["status"], d["detail"]) for d in ran] == [
        ("pi-1", "unchanged", "already cordoned"),
        ("pi-2", "done", "cordoned"),
    ]
    assert await cordoned(client) == {"pi-1": True, "pi-2": True, "pi-3": False}
    events = (await client.get("/api/v1/events", params={"type": "device.cordoned"})).json()
    assert sorted(e["device_id"] for e in events["items"]) == ["pi-1", "pi-2"]


async def test_assignments_leave_cordoned_devices_out_until_uncordoned(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    await push(client, BUNDLE)
    await client.post("/api/v1/devices/pi-2:cordon")
    done = (await assign(client, "warehouse-monitor@1.2.0", selector="site=oslo")).json()
    assert [d["device_id"] for d in done["devices"]] == ["pi-1"]
    assert done["cordoned"] == ["pi-2"]
    alone = await assign(client, "warehouse-monitor@1.2.0", devices=["pi-2"])
    assert alone.status_code == 422
    assert "(cordoned: pi-2)" in alone.json()["detail"]
    await client.post("/api/v1/devices/pi-2:uncordon")
    again = (await assign(client, "warehouse-monitor@1.2.0", devices=["pi-2"])).json()
    assert [d["device_id"] for d in again["devices"]] == ["pi-2"]


async def test_rollouts_skip_cordoned_devices_and_say_why(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    await fleet(client, anon)
    await push(client, BUNDLE)
    await client.post("/api/v1/devices/pi-3:cordon")
    body = {"bundle": "warehouse-monitor", "version": "1.2.0", "selector": "site", "waves": "100%"}
    created = await client.post("/api/v1/rollouts", json=body)
    assert created.status_code == 201, created.text
    rollout = created.json()["id"]
    tenant = (await client.get("/api/v1/me")).json()["tenant_id"]
    await step_rollout(app.state.runtime, tenant, rollout, datetime.now(UTC))
    shown = (await client.get(f"/api/v1/rollouts/{rollout}")).json()
    by_device = {d["device_id"]: d for d in shown["devices"]}
    assert by_device["pi-3"]["status"] == "skipped"
    assert by_device["pi-3"]["reason"] == "cordoned (uncordon it to include it)"
    assert by_device["pi-1"]["status"] == "updating"


async def test_actions_need_an_operator_and_a_clear_target(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    unknown = await client.post("/api/v1/devices/pi-9:cordon")
    assert unknown.status_code == 404
    assert "pi-9" in unknown.json()["detail"]
    both = await action(client, action="cordon", group="x", selector="site=oslo")
    assert both.status_code == 422
    assert "give exactly one target" in both.json()["detail"]
    bad = await action(client, action="explode", devices=["pi-1"])
    assert bad.status_code == 422


async def test_rollback_gives_each_device_the_version_before(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    await push(client, BUNDLE)
    await push(client, {**BUNDLE, "version": "1.3.0"})
    await assign(client, "warehouse-monitor@1.2.0", selector="site=oslo")
    await assign(client, "warehouse-monitor@1.3.0", devices=["pi-1"])
    planned = await action(client, action="rollback", selector="site", plan=True)
    assert [(d["device_id"], d["status"], d["detail"]) for d in planned.json()["devices"]] == [
        ("pi-1", "planned", "back to warehouse-monitor@1.2.0"),
        ("pi-2", "unchanged", "no earlier bundle version"),
        ("pi-3", "unchanged", "no earlier bundle version"),
    ]
    done = (await client.post("/api/v1/devices/pi-1:rollback")).json()["devices"][0]
    assert (done["status"], done["detail"]) == ("done", "back to warehouse-monitor@1.2.0")
    desired = (await client.get("/api/v1/devices/pi-1")).json()["desired"]
    assert (desired["bundle"], desired["version"]) == ("warehouse-monitor", "1.2.0")
    # Rolling back again goes back to 1.3.0: "the version before" is the one replaced.
    again = (await client.post("/api/v1/devices/pi-1:rollback")).json()["devices"][0]
    assert again["detail"] == "back to warehouse-monitor@1.3.0"
