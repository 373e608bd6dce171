"""A virtual device reports bundles the way the agent does: what runs now, and why not the new one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.protocol.device_v1 import ReportedState
from signalbeam.sim.device import (
    FAILURE_LOGS,
    FAILURE_REASONS,
    Behaviour,
    VirtualDevice,
    failure_evidence,
)
from signalbeam.sim.stats import FleetStats
from tests.helpers import enroll, enrollment_token
from tests.sim.support import eventually

BUNDLE: dict[str, Any] = {
    "name": "warehouse-monitor",
    "version": "1.2.0",
    "containers": [{"name": "monitor", "image": "127.0.0.1:5000/monitor:1.2.0"}],
    "apps": [
        {
            "name": "reader",
            "artifact": {"url": "http://127.0.0.1:9000/reader", "sha256": "ab" * 32},
            "command": ["./reader"],
        }
    ],
}


@pytest.fixture
async def device_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _reported(client: httpx.AsyncClient, generation: int) -> dict[str, Any] | None:
    device = (await client.get("/api/v1/devices/sim-1")).json()
    reported: dict[str, Any] = device["reported"]
    return reported if reported["generation"] == generation else None


async def test_virtual_device_reports_running_bundle_then_keeps_it_when_an_update_fails(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, device_client: httpx.AsyncClient
) -> None:
    credential = await enroll(anon, await enrollment_token(client), "sim-1")
    for version in ("1.2.0", "1.3.0"):
        response = await client.post("/api/v1/bundles", json={**BUNDLE, "version": version})
        assert response.status_code == 201, response.text
    behaviour = Behaviour(interval=0.05, apply_time=0.0, fail_rate=0.0)
    device = VirtualDevice(
        "sim-1", credential, seed=1, behaviour=behaviour, client=device_client, stats=FleetStats()
    )
    device.start()
    try:
        await client.post(
            "/api/v1/bundles/warehouse-monitor/versions/1.2.0/assign", json={"devices": ["sim-1"]}
        )
        running = await eventually(lambda: _reported(client, 1), "the device reporting 1.2.0")
        assert (running["status"], running["bundle"], running["version"]) == (
            "running",
            "warehouse-monitor",
            "1.2.0",
        )
        assert running["digest"].startswith("sha256:")
        assert [(i["kind"], i["name"], i["state"]) for i in running["items"]] == [
            ("container", "monitor", "running"),
            ("app", "reader", "running"),
        ]
        assert running["items"][0]["bundle"] == "warehouse-monitor@1.2.0"

        device.behaviour = Behaviour(interval=0.05, apply_time=0.0, fail_rate=1.0)
        await client.post(
            "/api/v1/bundles/warehouse-monitor/versions/1.3.0/assign", json={"devices": ["sim-1"]}
        )
        failed = await eventually(lambda: _reported(client, 2), "the device reporting failure")
    finally:
        device.stop()
    assert failed["status"] == "failed" and failed["reason"] in FAILURE_REASONS
    assert (failed["bundle"], failed["version"]) == ("warehouse-monitor", "1.2.0")
    assert failed["digest"] == running["digest"]
    # A failure a unit caused carries the lines it "wrote"; the others carry none.
    assert bool(failed["failure_log"]) == (failed["reason"] in FAILURE_LOGS)


def test_simulated_unit_failures_carry_a_few_log_lines_a_server_accepts() -> None:
    spec = {"kind": "bundle", "bundle": BUNDLE}
    evidence = {reason: failure_evidence(reason, spec) for reason in FAILURE_REASONS}
    with_lines = {r: e for r, e in evidence.items() if e}
    assert len(with_lines) == 2, "the health check failure and the out-of-memory exit"
    health = next(e for r, e in with_lines.items() if r.startswith("health check failed"))
    assert health["failed_unit"] == "monitor", "the first unit of the bundle being applied"
    for reason, found in with_lines.items():
        assert 3 <= len(found["failure_log"]) <= 50
        report = {"generation": 2, "status": "failed", "reason": reason, **found}
        assert ReportedState.model_validate(report).failure_log == found["failure_log"]
