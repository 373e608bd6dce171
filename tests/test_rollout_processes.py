"""Rollouts across real server processes: a restart mid-rollout, and a lease taken over on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from signalbeam.server.db.session import create_engine, create_session_factory
from signalbeam.server.repositories import leases
from signalbeam.server.workers.rollout_engine import LEASE
from tests.conftest import LiveServer, start_server, stop_server
from tests.rollout_support import BUNDLE, Fleet, enroll_fleet, push, rollout, status_is

# A short lease so a killed holder is replaced within seconds; a brisk engine for test time.
ENGINE = {"SIGNALBEAM_ROLLOUT_LEASE": "PT2S", "SIGNALBEAM_ROLLOUT_INTERVAL": "PT0.2S"}


def _server(data_dir: Path, database_url: str, port: int | None = None) -> LiveServer:
    extra = ["--database-url", database_url, "--no-mdns"]
    return start_server(data_dir, extra, env=ENGINE, port=port)


@asynccontextmanager
async def _clients(
    server: LiveServer,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin,
        httpx.AsyncClient(base_url=server.url, timeout=30) as devices,
    ):
        yield admin, devices


async def _start_rollout(admin: httpx.AsyncClient, devices: httpx.AsyncClient) -> tuple[Fleet, int]:
    fleet = await enroll_fleet(admin, devices, 4, {"site": "oslo"})
    await push(admin, "2.0.0")
    body = {"bundle": BUNDLE, "version": "2.0.0", "group": None, "selector": "site=oslo"}
    response = await admin.post("/api/v1/rollouts", json={**body, "waves": "1,100%", "soak": "2s"})
    assert response.status_code == 201, response.text
    rollout_id: int = response.json()["id"]

    async def canary_soaking() -> dict[str, Any] | None:
        detail = await rollout(admin, rollout_id)
        return detail if detail["counts"]["soaking"] == 1 else None

    await fleet.until(devices, canary_soaking, "the canary soaking")
    return fleet, rollout_id


async def _finish(server: LiveServer, fleet: Fleet, rollout_id: int) -> dict[str, Any]:
    async with _clients(server) as (admin, devices):
        done: dict[str, Any] = await fleet.until(
            devices, status_is(admin, rollout_id, "completed"), "completion after the restart"
        )
        # Each device was given the new version exactly once: nothing was assigned twice.
        for device in fleet.devices:
            detail = (await admin.get(f"/api/v1/devices/{device.device_id}")).json()
            assert detail["desired_generation"] == 1, detail
    assert {device.running for device in fleet.devices} == {(BUNDLE, "2.0.0")}
    return done


async def test_a_rollout_continues_after_the_server_is_killed(
    tmp_path: Path, database_url: str
) -> None:
    server = _server(tmp_path / "server", database_url)
    try:
        async with _clients(server) as (admin, devices):
            fleet, rollout_id = await _start_rollout(admin, devices)
    finally:
        stop_server(server, signal.SIGKILL)
    restarted = _server(tmp_path / "server", database_url, port=urlsplit(server.url).port)
    try:
        done = await _finish(restarted, fleet, rollout_id)
    finally:
        output = stop_server(restarted)
    assert "Traceback" not in output, output
    assert done["counts"]["succeeded"] == 4
    assert [d["status"] for d in done["devices"]] == ["succeeded"] * 4


async def _holder(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return await leases.holder_of(session, LEASE, datetime.now(UTC))
    finally:
        await engine.dispose()


def _pid(holder: str | None) -> int | None:
    return int(holder.split(":")[1]) if holder else None


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_another_server_takes_the_engine_over_when_its_holder_dies(
    tmp_path: Path, database_url: str
) -> None:
    first = _server(tmp_path / "server", database_url)
    second: LiveServer | None = None
    try:
        # The first server holds the lease before the second exists, and keeps it.
        await _wait_for_holder(database_url, first.process.pid)
        second = _server(tmp_path / "server", database_url)
        # Devices talk to the engine's server: another replica's device cache would hide new
        # desired state from them for up to its 30 s lifetime (until NATS carries evictions).
        async with _clients(first) as (admin, devices):
            fleet, rollout_id = await _start_rollout(admin, devices)
        assert _pid(await _holder(database_url)) == first.process.pid
        stop_server(first, signal.SIGKILL)
        await _wait_for_holder(database_url, second.process.pid)
        done = await _finish(second, fleet, rollout_id)
        assert done["counts"]["succeeded"] == 4
        output = stop_server(second)
        second = None
        assert "runs the rollout engine" in output and "Traceback" not in output, output
    finally:
        if first.process.poll() is None:
            stop_server(first)
        if second is not None:
            stop_server(second)


async def _wait_for_holder(database_url: str, pid: int) -> None:
    deadline = time.monotonic() + 30
    while _pid(await _holder(database_url)) != pid:
        assert time.monotonic() < deadline, f"process {pid} never took the rollout engine lease"
        await asyncio.sleep(0.1)
