"""Device actions through the management API: planned, carried out, recorded, respected.

Actions the device carries out (restart, restart-agent, reboot) are run against devices in
tests/server/test_device_actions.py; here they are only planned.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from signalbeam.server.repositories.rollouts import StaleRollout
from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.presence import sweep
from signalbeam.server.workers.rollout_engine import step_rollout
from tests.helpers import new_device, sync
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
    # The app's own rollout engine may take this first step meanwhile; it decides the same.
    with contextlib.suppress(StaleRollout):
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


async def desired_spec(anon: httpx.AsyncClient, credential: str) -> dict[str, Any]:
    """The desired-state document the device gets on its next sync."""
    answer = (await sync(anon, credential, known_generation=-1)).json()
    spec: dict[str, Any] = answer["desired"]["spec"]
    return spec


async def test_drain_cordons_and_stops_the_bundle_until_uncordon_and_rollback(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-1", {"site": "oslo"})
    await new_device(client, anon, "pi-2", {"site": "oslo"})
    await push(client, BUNDLE)
    await assign(client, "warehouse-monitor@1.2.0", devices=["pi-1"])
    planned = (await action(client, action="drain", selector="site=oslo", plan=True)).json()
    assert [(d["device_id"], d["status"], d["detail"]) for d in planned["devices"]] == [
        ("pi-1", "planned", "cordon, then stop warehouse-monitor@1.2.0's units"),
        ("pi-2", "planned", "cordon, then stop its units"),
    ]
    assert not any((await cordoned(client)).values())

    done = (await client.post("/api/v1/devices/pi-1:drain")).json()["devices"][0]
    assert done["status"] == "pending"
    assert done["detail"].startswith("cordoned; stopping warehouse-monitor@1.2.0's units")
    assert "`signalbeam uncordon` then `signalbeam rollback`" in done["detail"]
    shown = (await client.get("/api/v1/devices/pi-1")).json()
    assert shown["cordoned"] is True
    assert shown["desired"]["bundle"] is None
    spec = await desired_spec(anon, credential)
    assert spec == {"kind": "drained", "drained_from": "warehouse-monitor@1.2.0"}
    drained = (await client.get("/api/v1/events", params={"type": "device.drained"})).json()
    [event] = drained["items"]
    assert event["data"] == {"bundle": "warehouse-monitor", "version": "1.2.0"}
    assert event["message"] == "pi-1 drained by admin (it had warehouse-monitor@1.2.0)"
    again = (await client.post("/api/v1/devices/pi-1:drain")).json()["devices"][0]
    assert (again["status"], again["detail"]) == (
        "unchanged",
        "already drained (cordoned, nothing to run)",
    )
    # A drained device takes no assignment until uncordoned; rollback then brings it back.
    refused = await assign(client, "warehouse-monitor@1.2.0", devices=["pi-1"])
    assert refused.status_code == 422
    await client.post("/api/v1/devices/pi-1:uncordon")
    back = (await client.post("/api/v1/devices/pi-1:rollback")).json()["devices"][0]
    assert (back["status"], back["detail"]) == ("done", "back to warehouse-monitor@1.2.0")
    assert (await desired_spec(anon, credential))["kind"] == "bundle"


async def test_restart_needs_a_unit_and_the_others_take_none(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    missing = await action(client, action="restart", devices=["pi-1"])
    assert missing.status_code == 422
    assert missing.json()["field"] == "unit"
    assert "signalbeam restart DEVICE UNIT" in missing.json()["detail"]
    extra = await action(client, action="reboot", devices=["pi-1"], unit="web")
    assert extra.status_code == 422
    assert extra.json()["detail"] == "reboot takes no unit; only restart does"
    bad = await client.post("/api/v1/devices/pi-1:restart", json={"unit": "no spaces"})
    assert bad.status_code == 422


async def test_plans_skip_devices_that_cannot_be_reached(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await new_device(client, anon, "pi-1", {"site": "oslo"})
    second = await new_device(client, anon, "pi-2", {"site": "oslo"})
    await new_device(client, anon, "pi-3", {"site": "oslo"})
    assert await sweep(runtime, runtime.ingestor, now=datetime.now(UTC) + timedelta(hours=3))
    web = {"items": [{"kind": "app", "name": "web", "state": "running"}]}
    await sync(anon, first, reported=web, heartbeat={"boot_id": "boot-a"})
    await sync(anon, second, reported={"items": []})
    restart = await action(client, action="restart", unit="web", selector="site", plan=True)
    listed = [(d["device_id"], d["status"], d["detail"]) for d in restart.json()["devices"]]
    assert listed[:2] == [
        ("pi-1", "planned", "restart web"),
        ("pi-2", "skipped", "no unit 'web' on pi-2 (it runs no units)"),
    ]
    assert listed[2][:2] == ("pi-3", "skipped")
    assert listed[2][2].startswith("device pi-3 is offline (last seen ")
    reboot = await action(client, action="reboot", selector="site", plan=True)
    statuses = [(d["status"], d["detail"]) for d in reboot.json()["devices"]]
    assert statuses[0] == ("planned", "reboot")
    assert statuses[1][0] == "skipped" and "does not report a boot id" in statuses[1][1]
    agent = await action(client, action="restart-agent", selector="site", plan=True)
    assert [d["status"] for d in agent.json()["devices"]] == ["planned", "planned", "skipped"]
    # A plan asks nothing of any device.
    assert not (await client.get("/api/v1/events", params={"type": "device.action_failed"})).json()[
        "items"
    ]


async def test_device_actions_need_an_operator(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await fleet(client, anon)
    user = {"username": "vera", "role": "viewer", "password": "correct horse battery"}
    assert (await client.post("/api/v1/users", json=user)).status_code == 201
    login = {"username": "vera", "password": "correct horse battery"}
    token = (await anon.post("/api/v1/auth/login", json=login)).json()["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    for path, body in (
        ("/api/v1/devices/pi-1:restart", {"unit": "web"}),
        ("/api/v1/devices/pi-1:restart-agent", None),
        ("/api/v1/devices/pi-1:reboot", None),
        ("/api/v1/devices/pi-1:drain", None),
        ("/api/v1/actions", {"action": "reboot", "devices": ["pi-1"], "plan": True}),
    ):
        refused = await anon.post(path, json=body, headers=viewer)
        assert refused.status_code == 403, path
        assert "needs the operator role; you are viewer" in refused.json()["detail"]
