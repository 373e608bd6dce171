"""Taking simulated devices offline: the server's presence sweeper must notice, then see them return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from signalbeam.sim.device import DeviceState
from signalbeam.sim.fleet import Fleet
from tests.conftest import LiveServer, start_server, stop_server
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config


@pytest.fixture
def quick_presence_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A server that calls a device offline after 2 s of silence and sweeps twice a second."""
    flags = ["--database-url", database_url, "--no-mdns"]
    flags += ["--sync-interval", "1s", "--offline-after-missed", "2"]
    server = start_server(tmp_path / "server", flags, env={"SIGNALBEAM_SWEEP_INTERVAL": "PT0.5S"})
    yield server
    stop_server(server)


async def _ids(api: httpx.AsyncClient, status: str) -> list[str]:
    return sorted(d["device_id"] for d in await devices(api, status))


async def test_offline_devices_stop_syncing_and_come_back(
    quick_presence_server: LiveServer, tmp_path: Path
) -> None:
    server = quick_presence_server
    async with admin_api(server.url, server.admin_token) as api:
        token = await enrollment_token(api, {})
        config = fleet_config(server.url, token, 10, tmp_path / "sim.json", interval=0.5)
        async with Fleet(config) as fleet:

            async def online_count() -> int:
                return len(await _ids(api, "online"))

            await eventually(lambda: _equals(online_count, 10), "all 10 online")
            gone = fleet.set_offline(["sim-00001", "sim-00004"])
            assert gone == ["sim-00001", "sim-00004"]

            async def offline() -> list[str]:
                return await _ids(api, "offline")

            await eventually(lambda: _equals(offline, gone), "the two silent devices offline")
            assert await online_count() == 8, "the others stayed online"
            assert fleet.count(DeviceState.OFFLINE) == 2

            assert sorted(fleet.set_online(gone)) == gone
            await eventually(lambda: _equals(online_count, 10), "all 10 back online")
            taken = fleet.set_offline(0.3)
            assert len(taken) == 3 and fleet.count(DeviceState.RUNNING) == 7
        assert fleet.stats.syncs_failed == 0 and not fleet.stats.errors


async def _equals(read: Callable[[], Awaitable[object]], expected: object) -> bool:
    return await read() == expected
