"""Virtual devices answer operators' sessions through a real server: exec, logs, fan-out."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from signalbeam.protocol.sessions import STDOUT, unframe
from signalbeam.sim.fleet import Fleet
from signalbeam.sim.sessions import fails
from tests.conftest import LiveServer
from tests.server.session_support import BOUND, Transcript, attach, ws_url
from tests.sim.support import admin_api, devices, enrollment_token, eventually, fleet_config

COUNT = 20


async def _online(api: httpx.AsyncClient) -> bool:
    return len(await devices(api, "online")) == COUNT


async def _ready_fleet(api: httpx.AsyncClient) -> None:
    await eventually(lambda: _online(api), f"{COUNT} devices online")
    response = await api.put("/api/v1/remote-access", json={"enabled": True})
    assert response.status_code == 200, response.text


async def _ask(api: httpx.AsyncClient, device_id: str, kind: str, body: dict[str, Any]) -> Any:
    created = await api.post(f"/api/v1/devices/{device_id}:{kind}", json=body)
    assert created.status_code == 201, created.text
    return created.json()


async def _session(
    api: httpx.AsyncClient, server: LiveServer, device_id: str, kind: str, body: dict[str, Any]
) -> Transcript:
    created = await _ask(api, device_id, kind, body)
    return await attach(server.url, server.admin_token, created)


async def _follow(server: LiveServer, created: dict[str, Any], lines: int) -> list[str]:
    """Attach to a followed log, read until `lines` lines arrived, then leave."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with connect(ws_url(server.url, created["stream"]), additional_headers=headers) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), BOUND))["type"] == "started"
        text = b""
        while text.count(b"\n") < lines:
            message = await asyncio.wait_for(ws.recv(), BOUND)
            assert isinstance(message, bytes), message
            stream, data = unframe(message)
            assert stream == STDOUT
            text += data
    return text.decode().splitlines()


def _stamp(line: str) -> datetime:
    return datetime.fromisoformat(line.split(" ", 1)[0])


async def test_a_virtual_device_runs_commands_and_shows_and_follows_its_logs(
    live_server: LiveServer, tmp_path: Path
) -> None:
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {})
        config = fleet_config(
            live_server.url, token, COUNT, tmp_path / "sim.json", watch=True, log_interval=0.05
        )
        async with Fleet(config) as fleet:
            await _ready_fleet(api)
            ran = await _session(
                api, live_server, "sim-00007", "exec", {"command": ["uptime", "-p"]}
            )
            units = await _session(api, live_server, "sim-00007", "logs", {})
            tail = await _session(
                api, live_server, "sim-00007", "logs", {"unit": "agent", "tail": 3}
            )
            body = {"unit": "agent", "tail": 2, "follow": True}
            followed = await _follow(live_server, await _ask(api, "sim-00007", "logs", body), 4)
            # Leaving a followed log ends it on the device too: all four sessions are answered.
            await eventually(lambda: _answered(fleet, 4), "the followed log ends on the device")
    assert (ran.stdout, ran.stderr, ran.last) == (
        b"sim-00007: uptime -p\n",
        b"",
        {"type": "exit", "code": 0},
    )
    assert (units.stdout, units.last["code"]) == (b"agent\n", 0)
    lines = tail.stdout.decode().splitlines()
    assert len(lines) == 3 and tail.last == {"type": "exit", "code": 0}
    assert all(" sim-00007 agent[" in line for line in lines)
    assert [line.rsplit(" ", 1)[1] for line in followed] == ["(#1)", "(#2)", "(#3)", "(#4)"]
    assert _stamp(followed[1]) < _stamp(followed[2]) < _stamp(followed[3])
    assert fleet.stats.sessions_failed == 0 and not fleet.stats.errors


async def _answered(fleet: Fleet, count: int) -> bool:
    return fleet.stats.sessions_answered >= count


async def test_a_command_fanned_out_to_every_device_is_answered_by_each(
    live_server: LiveServer, tmp_path: Path
) -> None:
    command = ["systemctl", "is-active", "relay"]
    async with admin_api(live_server.url, live_server.admin_token) as api:
        token = await enrollment_token(api, {})
        config = fleet_config(
            live_server.url, token, COUNT, tmp_path / "sim.json", watch=True, exec_fail_rate=0.5
        )
        async with Fleet(config) as fleet:
            await _ready_fleet(api)
            ids = config.device_ids()
            seen = await asyncio.gather(
                *(_session(api, live_server, i, "exec", {"command": command}) for i in ids)
            )
    assert [t.stdout for t in seen] == [f"{i}: systemctl is-active relay\n".encode() for i in ids]
    codes = {i: t.last["code"] for i, t in zip(ids, seen, strict=True)}
    # The behaviour knob fails some devices' runs, always the same ones.
    assert codes == {i: 1 if fails(i, command, 0.5) else 0 for i in ids}
    assert set(codes.values()) == {0, 1}
    assert fleet.stats.sessions_answered == COUNT and fleet.stats.sessions_failed == 0
