"""A real `signalbeam server` process: first start, live event stream, no secrets in its log."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

from tests.conftest import LiveServer, start_server, stop_server
from tests.helpers import enroll, enrollment_token, sync


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """Server-Sent Event frames as dicts of their fields; comments are skipped."""
    frame: dict[str, str] = {}
    async for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            frame[key] = value


def test_first_start_prints_url_and_token_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    output = stop_server(first)
    assert f"running at {first.url}" in output
    assert first.admin_token in output
    token_file = data / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "secret.key").stat().st_mode) == 0o600

    second = start_server(data)
    output = stop_server(second)
    assert first.admin_token not in output
    assert str(token_file) in output
    assert second.admin_token == first.admin_token


async def test_event_stream_live_and_resumed(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=headers, timeout=30) as admin:
        async with admin.stream("GET", "/api/v1/events/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"
            await admin.post("/api/v1/groups", json={"name": "live"})
            frame = await anext(frames(lines))
        assert frame["event"] == "group.created"
        payload = json.loads(frame["data"])
        assert payload["id"] == int(frame["id"]) and payload["actor"] == "user:admin"

        # While disconnected, more happens; reconnecting with Last-Event-ID replays it in order.
        await admin.post("/api/v1/groups", json={"name": "missed-1"})
        await admin.post("/api/v1/groups", json={"name": "missed-2"})
        resume = {"Last-Event-ID": frame["id"]}
        async with admin.stream("GET", "/api/v1/events/stream", headers=resume) as response:
            stream = frames(response.aiter_lines())
            replayed = [json.loads((await anext(stream))["data"]) for _ in range(2)]
        assert [e["message"].split(" (")[0] for e in replayed] == [
            "group missed-1 created",
            "group missed-2 created",
        ]


async def test_server_log_never_shows_device_or_enrollment_secrets(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=live_server.url, headers=headers) as admin,
        httpx.AsyncClient(base_url=live_server.url) as anon,
    ):
        token = await enrollment_token(admin)
        credential = await enroll(anon, token, "secretive")
        assert (await sync(anon, credential)).status_code == 200
        assert (await sync(anon, credential + "x")).status_code == 401
    output = stop_server(live_server)
    assert token not in output
    assert credential not in output
    assert "Traceback" not in output


def test_server_advertises_itself_on_mdns(live_server: LiveServer) -> None:
    found: dict[str, str] = {}
    done = threading.Event()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is not ServiceStateChange.Added:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        url = (info.properties.get(b"url") or b"").decode() if info else ""
        if url == live_server.url:
            found["url"] = url
            done.set()

    zeroconf = Zeroconf(interfaces=["127.0.0.1"])
    try:
        browser = ServiceBrowser(zeroconf, "_signalbeam._tcp.local.", handlers=[on_change])
        assert done.wait(timeout=20), "no _signalbeam._tcp service with this server's URL"
        browser.cancel()
    finally:
        zeroconf.close()
    assert found["url"] == live_server.url


async def test_shutdown_ends_open_event_streams(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", ["--no-mdns"])
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin,
        admin.stream("GET", "/api/v1/events/stream") as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        server.process.terminate()
        rest = [line async for line in lines]
    output = stop_server(server)
    assert [line for line in rest if line and not line.startswith(":")] == []
    assert "graceful shutdown exceeded" not in output
    assert "Application shutdown complete" in output
