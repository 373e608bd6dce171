"""Actions the device carries out, through a real server: restart, restart-agent, reboot.

The device here is scripted (tests/server/session_support.py): it holds the real watch and
answers the real `action` session. The real agent's side is in tests/agent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from signalbeam.protocol.sessions import control
from tests.conftest import LiveServer, start_server, stop_server
from tests.server.session_support import BOUND, ScriptedDevice, online_device, running
from tests.server.test_sessions import events, user_headers

BOOT_A = "aaaa1111-0000-4000-8000-000000000001"
BOOT_B = "bbbb2222-0000-4000-8000-000000000002"
UNITS = {
    "items": [
        {"kind": "app", "name": "web", "state": "running"},
        {"kind": "container", "name": "db", "state": "running"},
    ]
}


async def answer_actions(opened: dict[str, Any], ws: ClientConnection) -> None:
    """Restart web and the agent; refuse to restart db, as a device whose engine is down."""
    if opened["action"] == "restart" and opened["unit"] == "db":
        await ws.send(control("error", detail="container db could not be restarted: engine down"))
        return
    done = {"restart": f"restarted {opened['unit']}", "restart-agent": "restarting the agent"}
    await ws.send(control("exit", code=0, detail=done.get(opened["action"], "rebooting")))


@pytest.fixture
def quick_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A server that calls a device offline after 3 s of silence (sweeping 5 times a second)."""
    flags = ["--database-url", database_url, "--no-mdns"]
    flags += ["--sync-interval", "1s", "--offline-after-missed", "3"]
    server = start_server(tmp_path / "quick", flags, env={"SIGNALBEAM_SWEEP_INTERVAL": "PT0.2S"})
    yield server
    stop_server(server)


@asynccontextmanager
async def syncing(http: httpx.AsyncClient, credential: str, **body: Any) -> AsyncIterator[None]:
    """The device's heartbeat in the background, so it stays online."""
    headers = {"Authorization": f"Bearer {credential}"}

    async def beat() -> None:
        while True:
            response = await http.post("/api/device/v1/sync", json=body, headers=headers)
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.3)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Any, what: str) -> None:
    """Poll the async `check` until it is true (bounded)."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def presence(http: httpx.AsyncClient, device_id: str) -> str:
    value: str = (await http.get(f"/api/v1/devices/{device_id}")).json()["presence"]
    return value


async def test_restart_runs_on_reachable_devices_and_skips_offline_ones(
    quick_server: LiveServer, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {quick_server.admin_token}"}
    async with httpx.AsyncClient(base_url=quick_server.url, headers=headers, timeout=30) as http:
        token = await http.post("/api/v1/enrollment-tokens", json={"labels": {"site": "oslo"}})
        secret = token.json()["token"]
        credentials = {}
        for device_id in ("pi-1", "pi-2"):
            body = {"token": secret, "device_id": device_id}
            enrolled = await http.post("/api/device/v1/enroll", json=body)
            credentials[device_id] = enrolled.json()["credential"]
        device = ScriptedDevice(quick_server.url, credentials["pi-1"], answer_actions)
        assert (await http.get("/api/v1/remote-access")).json()["enabled"] is False
        async with syncing(http, credentials["pi-1"], reported=UNITS), running(device):
            await http.post(
                "/api/device/v1/sync",
                json={},
                headers={"Authorization": f"Bearer {credentials['pi-2']}"},
            )
            await until(lambda: _is(http, "pi-2", "offline"), "pi-2 to go offline")
            ran = await http.post(
                "/api/v1/actions", json={"action": "restart", "unit": "web", "selector": "site"}
            )
            assert ran.status_code == 200, ran.text
            streamed = await _stream(http, {"action": "restart-agent", "selector": "site=oslo"})
            failed = await http.post("/api/v1/devices/pi-1:restart", json={"unit": "db"})
    results = {d["device_id"]: d for d in ran.json()["devices"]}
    assert (results["pi-1"]["status"], results["pi-1"]["detail"]) == ("done", "restarted web")
    assert results["pi-2"]["status"] == "skipped"
    assert results["pi-2"]["detail"].startswith("device pi-2 is offline (last seen ")
    opened = device.opened[0]
    assert (opened["kind"], opened["action"], opened["unit"], opened["actor"]) == (
        "action",
        "restart",
        "web",
        "user:admin",
    )
    # The stream says each device as it is done: the offline one first, without waiting.
    assert [(line["device_id"], line["status"]) for line in streamed] == [
        ("pi-2", "skipped"),
        ("pi-1", "done"),
    ]
    assert streamed[1]["detail"] == "restarting the agent"
    [refused] = failed.json()["devices"]
    assert (refused["status"], refused["detail"]) == (
        "failed",
        "container db could not be restarted: engine down",
    )
    async with httpx.AsyncClient(base_url=quick_server.url, headers=headers) as http:
        [restarted] = await events(http, "device.unit_restarted")
        [agent] = await events(http, "device.agent_restarted")
        [failure] = await events(http, "device.action_failed")
    assert (restarted["device_id"], restarted["actor"], restarted["message"]) == (
        "pi-1",
        "user:admin",
        "web on pi-1 restarted by admin",
    )
    assert restarted["data"] == {"unit": "web", "detail": "restarted web"}
    assert agent["message"] == "agent on pi-1 restarting, asked by admin"
    assert failure["message"] == (
        "restart db on pi-1 by admin failed: container db could not be restarted: engine down"
    )
    assert failure["data"]["unit"] == "db"


async def _is(http: httpx.AsyncClient, device_id: str, wanted: str) -> bool:
    return await presence(http, device_id) == wanted


async def _stream(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {"Accept": "application/x-ndjson"}
    async with http.stream("POST", "/api/v1/actions", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) async for line in response.aiter_lines() if line]


async def test_a_reboot_is_pending_until_the_device_reports_a_new_boot_id(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    credential = await online_device(http, "pi-1")
    device_headers = {"Authorization": f"Bearer {credential}"}

    async def boot(boot_id: str) -> None:
        body = {"heartbeat": {"boot_id": boot_id}}
        response = await http.post("/api/device/v1/sync", json=body, headers=device_headers)
        assert response.status_code == 200

    await boot(BOOT_A)
    device = ScriptedDevice(live_server.url, credential, answer_actions)
    async with running(device):
        asked = await http.post("/api/v1/devices/pi-1:reboot")
    [result] = asked.json()["devices"]
    assert (result["status"], result["detail"]) == (
        "pending",
        "rebooting; done once it reports a new boot id (now aaaa1111)",
    )
    assert device.opened[0]["action"] == "reboot"
    shown = (await http.get("/api/v1/devices/pi-1")).json()
    assert shown["rebooting_since"] is not None and shown["boot_id"] == BOOT_A
    [requested] = await events(http, "device.reboot_requested")
    assert requested["message"] == "pi-1 rebooting, asked by admin (boot id aaaa1111)"
    await boot(BOOT_A)  # the same boot again: not back yet
    assert (await http.get("/api/v1/devices/pi-1")).json()["rebooting_since"] is not None
    assert await events(http, "device.rebooted") == []

    await boot(BOOT_B)
    shown = (await http.get("/api/v1/devices/pi-1")).json()
    assert (shown["boot_id"], shown["rebooting_since"]) == (BOOT_B, None)
    [back] = await events(http, "device.rebooted")
    assert back["message"].startswith("pi-1 rebooted (boot id aaaa1111 → bbbb2222), ")
    assert back["message"].endswith(" after user:admin asked")
    assert back["data"]["requested_by"] == "user:admin"


async def test_a_refused_reboot_fails_and_a_dropped_one_stays_pending(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    credential = await online_device(http, "pi-1")
    headers = {"Authorization": f"Bearer {credential}"}
    await http.post("/api/device/v1/sync", json={"heartbeat": {"boot_id": BOOT_A}}, headers=headers)

    behaviour = ["refuse"]

    async def refuse_then_vanish(opened: dict[str, Any], ws: ClientConnection) -> None:
        """Refuses first; then goes down before it can answer, as a fast reboot does."""
        if behaviour.pop(0) == "refuse":
            detail = "`systemctl reboot` failed (exit 1): Access denied; the device did not reboot"
            await ws.send(control("error", detail=detail))

    # One device throughout: a second one on the same credential would leave the first's
    # watch held on the server, and an offer handed to that watch waits for it to time out.
    async with running(ScriptedDevice(live_server.url, credential, refuse_then_vanish)):
        refused = (await http.post("/api/v1/devices/pi-1:reboot")).json()["devices"][0]
        assert refused["status"] == "failed" and "Access denied" in refused["detail"], refused
        assert (await http.get("/api/v1/devices/pi-1")).json()["rebooting_since"] is None
        behaviour.append("vanish")
        dropped = (await http.post("/api/v1/devices/pi-1:reboot")).json()["devices"][0]
    assert dropped["status"] == "pending", dropped
    assert (await http.get("/api/v1/devices/pi-1")).json()["rebooting_since"] is not None


async def test_viewers_cannot_reboot(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await online_device(http, "pi-1")
    headers = await user_headers(http, "vera", "viewer")
    refused = await http.post("/api/v1/devices/pi-1:reboot", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await events(http, "device.reboot_requested") == []
