"""Desired state reaching watching devices: wake-up, apply, and the reported outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from signalbeam.protocol.device_v1 import SyncRequest
from signalbeam.sim.device import FAILURE_REASONS, Behaviour, VirtualDevice
from signalbeam.sim.fleet import Fleet
from signalbeam.sim.stats import FleetStats
from tests.conftest import LiveServer
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config

COUNT = 12
SPEC = {"bundle": "warehouse-monitor", "version": "1.2.0"}


async def _reported(api: httpx.AsyncClient, generation: int) -> list[dict[str, Any]] | None:
    items = await devices(api)
    done = [d for d in items if d["reported_generation"] == generation]
    return items if len(done) == COUNT else None


async def _holding(fleet: Fleet, generation: int) -> bool:
    return all(device.generation == generation for device in fleet.devices.values())


async def test_watching_devices_fetch_apply_and_report_a_change_well_before_their_interval(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {})
        # A 60 s interval: only the watch can explain a device acting within seconds.
        behaviour = {"interval": 60.0, "watch": True, "apply_time": 0.2, "fail_rate": 0.5}
        config = fleet_config(live_server.url, token, COUNT, tmp_path / "sim.json", **behaviour)
        async with Fleet(config) as fleet:
            await eventually(lambda: _holding(fleet, 0), "every device holding generation 0")
            body = {"devices": config.device_ids(), "spec": SPEC, "summary": "sim test"}
            response = await api.post("/api/v1/devices/desired-state", json=body)
            assert response.status_code == 200, response.text
            items = await eventually(lambda: _reported(api, 1), "every device reporting gen 1", 15)
        assert fleet.stats.watch_wakeups == COUNT
        assert fleet.stats.applies_ok + fleet.stats.applies_failed == COUNT
        assert 0 < fleet.stats.applies_failed < COUNT, "seed 1 fails about half"
        details = [(await api.get(f"/api/v1/devices/{d['device_id']}")).json() for d in items]
    states = [d["reported_state"] for d in details]
    assert {s["status"] for s in states} == {"running", "failed"}
    assert all(s["reason"] in FAILURE_REASONS for s in states if s["status"] == "failed")
    assert all(d["desired_state"] == SPEC for d in details)


async def test_sync_bodies_are_valid_device_api_v1() -> None:
    async with httpx.AsyncClient() as unused:
        device = VirtualDevice(
            "sim-00000", "sbd_x", seed=3, behaviour=Behaviour(), client=unused, stats=FleetStats()
        )
        first = SyncRequest.model_validate_json(device.sync_body())
        device.generation = 4
        second = SyncRequest.model_validate_json(device.sync_body())
    assert first.facts is not None and first.facts.hostname == "sim-00000"
    assert first.facts.agent_version.startswith("sim-")
    assert second.known_generation == 4 and second.heartbeat.cpu_percent is not None
