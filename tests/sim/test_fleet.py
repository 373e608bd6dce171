"""A simulated fleet against a real server process: it must keep speaking the real protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbeam import __version__
from signalbeam.sim.device import DeviceState
from signalbeam.sim.fleet import Fleet, FleetConfig, SimError
from tests.conftest import LiveServer
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config

COUNT = 20


async def _all_online(api: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    online = await devices(api, "online")
    return online if len(online) == COUNT else None


async def _registered(api: httpx.AsyncClient) -> int:
    response = await api.get("/api/v1/events", params={"type": "device.registered", "limit": 1000})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def _has_history(api: httpx.AsyncClient, device_id: str) -> bool:
    response = await api.get(f"/api/v1/devices/{device_id}/metrics")
    assert response.status_code == 200, response.text
    return any(point["samples"] and point["cpu"] is not None for point in response.json()["points"])


async def test_fleet_comes_online_with_labels_and_metrics_and_restarts_without_re_enrolling(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {"site": "oslo"})
        base = fleet_config(live_server.url, token, COUNT, tmp_path / "sim.json")
        config = FleetConfig(**{**base.__dict__, "labels": {"env": "sim"}})
        async with Fleet(config) as fleet:
            online = await eventually(lambda: _all_online(api), f"{COUNT} devices online")
            await eventually(lambda: _has_history(api, "sim-00007"), "metric history")
        assert fleet.stats.enrolled == COUNT and fleet.stats.syncs_failed == 0
        assert not fleet.stats.errors
        assert sorted(d["device_id"] for d in online) == config.device_ids()
        assert {tuple(sorted(d["labels"].items())) for d in online} == {
            (("env", "sim"), ("site", "oslo"))
        }
        assert {d["agent_version"] for d in online} == {f"sim-{__version__}"}
        assert all(2 <= d["metrics"]["cpu_percent"] <= 90 for d in online)
        assert all(d["metrics"]["disks"][0]["mount"] == "/" for d in online)

        async with Fleet(config) as again:
            await eventually(lambda: _synced(again, COUNT), "every device synced again")
        assert (again.stats.reused, again.stats.enrolled) == (COUNT, 0)
        assert again.stats.syncs_failed == 0
        assert await _registered(api) == COUNT


async def _synced(fleet: Fleet, count: int) -> bool:
    return fleet.stats.syncs_ok >= count


async def test_a_decommissioned_device_stops_alone_with_one_log_line(
    live_server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="signalbeam.sim")
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {})
        config = fleet_config(live_server.url, token, 5, tmp_path / "sim.json", watch=True)
        async with Fleet(config) as fleet:
            await eventually(lambda: _synced(fleet, 5), "first syncs")
            response = await api.delete("/api/v1/devices/sim-00003")
            assert response.status_code == 200, response.text
            await eventually(lambda: _stopped(fleet), "the decommissioned device stops")
            before = fleet.stats.syncs_ok
            await eventually(lambda: _synced(fleet, before + 8), "the others keep syncing")
            assert fleet.devices["sim-00003"].state is DeviceState.STOPPED
            assert fleet.count(DeviceState.RUNNING) == 4
    lines = [r.getMessage() for r in caplog.records if "sim-00003" in r.getMessage()]
    assert len(lines) == 1 and "refused" in lines[0] and "decommissioned" in lines[0]
    assert fleet.stats.stopped == 1


async def _stopped(fleet: Fleet) -> bool:
    return fleet.stats.stopped == 1


async def test_a_bad_enrollment_token_is_one_clear_error(
    live_server: LiveServer, tmp_path: Path
) -> None:
    config = fleet_config(live_server.url, "sbe_not-a-token", 3, tmp_path / "sim.json")
    fleet = Fleet(config)
    with pytest.raises(
        SimError, match=r"refused to enroll sim-0000.*enrollment token not recognised"
    ):
        await fleet.start()
    await fleet.stop()
    assert not (tmp_path / "sim.json").exists()
