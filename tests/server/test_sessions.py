"""Sessions through a real server process: policy, presence, relaying, recording, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from signalbeam.protocol.sessions import (
    CLOSE_NOT_FOUND,
    CLOSE_REFUSED,
    MAX_CHUNK_BYTES,
    STDIN,
    STDOUT,
    frame,
    unframe,
)
from tests.conftest import LiveServer, stop_server
from tests.server.session_support import (
    BOUND,
    ScriptedDevice,
    attach,
    online_device,
    read_all,
    running,
    stalled_operator,
    ws_url,
)


async def enable(http: httpx.AsyncClient, *allow: str) -> None:
    body = {"enabled": True, "exec_allow": list(allow)}
    response = await http.put("/api/v1/remote-access", json=body)
    assert response.status_code == 200, response.text


async def user_headers(http: httpx.AsyncClient, name: str, role: str) -> dict[str, str]:
    user = {"username": name, "role": role, "password": "correct horse battery"}
    assert (await http.post("/api/v1/users", json=user)).status_code == 201
    login = {"username": name, "password": "correct horse battery"}
    token = (await http.post("/api/v1/auth/login", json=login)).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def events(http: httpx.AsyncClient, type_: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await http.get("/api/v1/events", params={"limit": 200})).json()[
        "items"
    ]
    return [e for e in items if e["type"] == type_]


async def test_exec_runs_on_the_device_and_is_recorded(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"))
    await enable(http)
    async with running(device):
        created = await http.post("/api/v1/devices/pi-07:exec", json={"command": ["uptime", "-p"]})
        assert created.status_code == 201, created.text
        seen = await attach(live_server.url, live_server.admin_token, created.json())
    assert seen.controls[0]["type"] == "started"
    assert (seen.stdout, seen.stderr, seen.last) == (
        b"uptime -p",
        b"done\n",
        {"type": "exit", "code": 0},
    )
    opened = device.opened[0]
    assert (opened["kind"], opened["command"], opened["actor"]) == (
        "exec",
        ["uptime", "-p"],
        "user:admin",
    )
    ended = (await events(http, "session.ended"))[0]
    assert ended["device_id"] == "pi-07"
    assert ended["data"]["exit_code"] == 0
    assert ended["data"]["command"] == "uptime -p"
    assert ended["data"]["bytes_from_device"] == len(b"uptime -p") + len(b"done\n") + 2
    assert len(await events(http, "session.started")) == 1


async def test_remote_access_is_off_until_an_admin_turns_it_on(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    await online_device(http, "pi-07")
    assert (await http.get("/api/v1/remote-access")).json() == {"enabled": False, "exec_allow": []}
    refused = await http.post("/api/v1/devices/pi-07:exec", json={"command": ["reboot"]})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "remote access is off for this tenant" in refused.json()["detail"]
    assert "signalbeam remote-access enable" in refused.json()["detail"]
    logged = await events(http, "session.refused")
    assert logged[0]["data"]["command"] == "reboot"
    # Logs are not remote access: any role may ask for them while it is off.
    assert (
        await http.post("/api/v1/devices/pi-07:logs", json={"unit": "agent"})
    ).status_code == 201


async def test_viewers_read_logs_but_cannot_exec(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    await online_device(http, "pi-07")
    await enable(http)
    headers = await user_headers(http, "vera", "viewer")
    refused = await http.post(
        "/api/v1/devices/pi-07:exec", json={"command": ["id"]}, headers=headers
    )
    assert refused.status_code == 403
    assert "needs the operator role; you are viewer" in refused.json()["detail"]
    logs = await http.post("/api/v1/devices/pi-07:logs", json={"follow": True}, headers=headers)
    assert logs.status_code == 201


async def test_an_operator_cannot_change_the_policy(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    headers = await user_headers(http, "otto", "operator")
    response = await http.put("/api/v1/remote-access", json={"enabled": True}, headers=headers)
    assert response.status_code == 403
    assert (await http.get("/api/v1/remote-access")).json()["enabled"] is False


async def test_the_allow_list_names_the_rule_that_refused(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"))
    await enable(http, "uptime", "systemctl status *")
    refused = await http.post("/api/v1/devices/pi-07:exec", json={"command": ["rm", "-rf", "/"]})
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert "'rm -rf /' is not on this tenant's exec allow-list" in detail
    assert "'systemctl status *'" in detail
    shell = await http.post("/api/v1/devices/pi-07:exec", json={"tty": True})
    assert "interactive shell is refused" in shell.json()["detail"]
    async with running(device):
        allowed = await http.post(
            "/api/v1/devices/pi-07:exec", json={"command": ["systemctl", "status", "nginx"]}
        )
        assert allowed.status_code == 201
        seen = await attach(live_server.url, live_server.admin_token, allowed.json())
    assert seen.stdout == b"systemctl status nginx"


async def test_an_offline_or_unknown_device_is_answered_at_once(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    await enable(http)
    token = (await http.post("/api/v1/enrollment-tokens", json={})).json()["token"]
    body = {"token": token, "device_id": "pi-new"}
    assert (await http.post("/api/device/v1/enroll", json=body)).status_code == 200
    never = await http.post("/api/v1/devices/pi-new:exec", json={"command": ["id"]})
    assert never.status_code == 409
    assert never.json()["detail"] == "device pi-new has never connected"
    unknown = await http.post("/api/v1/devices/pi-99:logs", json={})
    assert unknown.status_code == 404
    assert "signalbeam devices ls" in unknown.json()["detail"]
    empty = await http.post("/api/v1/devices/pi-new:exec", json={"command": []})
    assert empty.status_code == 422
    assert "tty=true for a shell" in empty.json()["detail"]


async def test_stdin_reaches_the_device_and_the_device_dropping_is_reported(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    got: list[bytes] = []

    async def read_then_vanish(opened: dict[str, Any], ws: ClientConnection) -> None:
        data = await ws.recv()
        assert isinstance(data, bytes)
        got.append(unframe(data)[1])
        await ws.send(frame(STDOUT, b"half a li"))
        # Gone without an exit frame: the link dropped.

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), read_then_vanish)
    await enable(http)
    async with running(device):
        created = (await http.post("/api/v1/devices/pi-07:exec", json={"command": ["cat"]})).json()
        headers = {"Authorization": f"Bearer {live_server.admin_token}"}
        async with connect(
            ws_url(live_server.url, created["stream"]), additional_headers=headers
        ) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), BOUND))["type"] == "started"
            await ws.send(frame(STDIN, b"hello device\n"))
            seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert got == [b"hello device\n"]
    assert seen.stdout == b"half a li"
    assert seen.last == {"type": "error", "detail": "connection to pi-07 lost"}
    ended = (await events(http, "session.ended"))[0]
    assert ended["data"]["error"] == "connection to pi-07 lost"
    assert ended["data"]["bytes_to_device"] == len(b"hello device\n")


async def test_a_session_is_only_its_own_devices_and_operators(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    other = ScriptedDevice(live_server.url, await online_device(http, "pi-08"))
    await online_device(http, "pi-07")
    await enable(http)
    created = (await http.post("/api/v1/devices/pi-07:exec", json={"command": ["id"]})).json()
    # Another device connecting for pi-07's session gets nothing.
    path = f"/api/device/v1/sessions/{created['session']}"
    async with connect(ws_url(live_server.url, path), additional_headers=other.headers) as ws:
        seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert seen.last["type"] == "error"
    assert "no such session for this device" in seen.last["detail"]
    assert seen.close_code == CLOSE_NOT_FOUND
    # Without an API token the operator stream refuses too.
    async with connect(ws_url(live_server.url, created["stream"])) as ws:
        seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert "Authorization: Bearer <API token>" in seen.last["detail"]
    assert seen.close_code == CLOSE_REFUSED


async def test_a_server_restart_ends_sessions_on_both_sides(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    device_saw: list[str] = []

    async def wait_forever(opened: dict[str, Any], ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                device_saw.append(str(message))
        device_saw.append(f"closed {ws.close_code}")

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), wait_forever)
    await enable(http)
    async with running(device):
        created = (await http.post("/api/v1/devices/pi-07:exec", json={"command": ["top"]})).json()
        headers = {"Authorization": f"Bearer {live_server.admin_token}"}
        async with connect(
            ws_url(live_server.url, created["stream"]), additional_headers=headers
        ) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), BOUND))["type"] == "started"
            stopping = asyncio.create_task(
                asyncio.to_thread(stop_server, live_server, signal.SIGTERM)
            )
            seen = await asyncio.wait_for(read_all(ws), BOUND)
            await stopping
    assert seen.last == {
        "type": "error",
        "detail": "the control plane is restarting; the session ended",
    }
    assert device_saw[-1] == "closed 1012"


async def test_an_operator_that_stops_reading_slows_the_device_instead_of_filling_memory(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    """The relay holds one frame at a time: a device can get only a few buffers ahead."""
    sent = 0
    blocked = asyncio.Event()

    async def flood(opened: dict[str, Any], ws: ClientConnection) -> None:
        nonlocal sent
        while sent < 256 * 1024 * 1024:
            try:
                # Random bytes: the link compresses, and repeated bytes would shrink to nothing.
                chunk = frame(STDOUT, os.urandom(MAX_CHUNK_BYTES - 1))
                await asyncio.wait_for(ws.send(chunk), 2)
            except TimeoutError:
                blocked.set()  # the server stopped taking frames: backpressure reached us
                await asyncio.Future()  # hold the session until the test ends it
            sent += len(chunk)

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), flood)
    await enable(http)
    async with running(device):
        created = (await http.post("/api/v1/devices/pi-07:exec", json={"command": ["yes"]})).json()
        with stalled_operator(live_server.url, live_server.admin_token, created["stream"]):
            await asyncio.wait_for(blocked.wait(), 60)
    # Kernel socket buffers and a frame or two per hop, not the 256 MiB the device had to send.
    assert sent < 64 * 1024 * 1024, sent


async def test_the_dashboard_stream_refuses_a_page_from_another_origin(
    live_server: LiveServer,
) -> None:
    """A cookie alone must not open a session: a foreign page's WebSocket is refused."""
    url = ws_url(live_server.url, "/devices/pi-07/sessions/none/stream")
    async with connect(url, origin=Origin("http://evil.example")) as ws:
        seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert seen.last["detail"] == "a session stream opens only from the dashboard's own pages"
    assert seen.close_code == CLOSE_REFUSED


async def test_copy_and_forward_reach_the_device_with_what_it_needs(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"))
    await enable(http)
    no_digest = await http.post(
        "/api/v1/devices/pi-07:copy", json={"path": "/x", "direction": "put"}
    )
    assert no_digest.status_code == 422
    assert "size and sha256" in no_digest.json()["detail"]
    relative = await http.post("/api/v1/devices/pi-07:copy", json={"path": "x", "direction": "get"})
    assert relative.status_code == 422
    put = {"path": "/etc/kiosk.conf", "direction": "put", "size": 3, "sha256": "a" * 64}
    async with running(device):
        for path, body in ((":copy", put), (":forward", {"port": 8080})):
            created = (await http.post(f"/api/v1/devices/pi-07{path}", json=body)).json()
            await attach(live_server.url, live_server.admin_token, created)
    copy, forward = device.opened
    assert (copy["kind"], copy["path"], copy["size"], copy["sha256"]) == (
        "copy",
        "/etc/kiosk.conf",
        3,
        "a" * 64,
    )
    assert (forward["kind"], forward["host"], forward["port"]) == ("forward", "127.0.0.1", 8080)
    ended = {e["data"]["kind"]: e["data"] for e in await events(http, "session.ended")}
    assert ended["copy"]["path"] == "/etc/kiosk.conf"
    assert ended["forward"]["port"] == 8080
