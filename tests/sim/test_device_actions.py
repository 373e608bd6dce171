"""Virtual devices answer device actions through a real server, as real devices do.

Restart answers done; a reboot comes back with a new boot id after a pause; a drain is
reported as running nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from signalbeam.sim.fleet import Fleet
from tests.conftest import LiveServer
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config
from tests.test_bundles_api import BUNDLE

COUNT = 6


async def _running(api: httpx.AsyncClient) -> bool:
    found = await devices(api, "online")
    return len(found) == COUNT and all(d["reported_status"] == "running" for d in found)


async def test_a_fleet_restarts_a_unit_and_a_device_reboots_with_a_new_boot_id(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {"site": "oslo"})
        config = fleet_config(
            live_server.url, token, COUNT, tmp_path / "sim.json", watch=True, apply_time=0.1
        )
        async with Fleet(config) as fleet:
            await eventually(lambda: _online(api), f"{COUNT} devices online")
            assert (await api.post("/api/v1/bundles", json=BUNDLE)).status_code == 201
            path = "/api/v1/bundles/warehouse-monitor/versions/1.2.0/assign"
            assert (await api.post(path, json={"selector": "site=oslo"})).status_code == 200
            await eventually(lambda: _running(api), "the bundle running everywhere")
            body = {"action": "restart", "unit": "monitor", "selector": "site=oslo"}
            restarted = (await api.post("/api/v1/actions", json=body)).json()["devices"]
            unknown = await api.post("/api/v1/actions", json={**body, "unit": "nope"})

            first = config.device_ids()[0]
            before = (await api.get(f"/api/v1/devices/{first}")).json()["boot_id"]
            reboot = (await api.post(f"/api/v1/devices/{first}:reboot")).json()["devices"][0]
            back = await eventually(lambda: _back(api, first, before), "the reboot to complete")
            last = config.device_ids()[-1]
            await api.post(f"/api/v1/devices/{last}:drain")
            drained = await eventually(lambda: _idle(api, last), "the drained device to report")
    assert [d["status"] for d in restarted] == ["done"] * COUNT
    assert restarted[0]["detail"] == "restarted monitor"
    assert {d["status"] for d in unknown.json()["devices"]} == {"skipped"}
    assert reboot["status"] == "pending"
    assert back["boot_id"] != before and back["presence"] == "online"
    assert fleet.stats.reboots == 1 and fleet.stats.sessions_failed == 0
    assert drained["cordoned"] is True and drained["bundle"] is None


async def _idle(api: httpx.AsyncClient, device_id: str) -> dict[str, Any] | None:
    shown: dict[str, Any] = (await api.get(f"/api/v1/devices/{device_id}")).json()
    return shown if shown["reported_status"] == "idle" else None


async def _online(api: httpx.AsyncClient) -> bool:
    return len(await devices(api, "online")) == COUNT


async def _back(api: httpx.AsyncClient, device_id: str, before: str) -> dict[str, Any] | None:
    shown: dict[str, Any] = (await api.get(f"/api/v1/devices/{device_id}")).json()
    done = shown["rebooting_since"] is None and shown["boot_id"] not in (None, before)
    return shown if done else None
