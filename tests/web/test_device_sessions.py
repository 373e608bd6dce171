"""The device page's Logs, Terminal and Recent sessions panels and cordon button, in a real
chromium."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from websockets.asyncio.client import ClientConnection

from signalbeam.protocol.sessions import STDERR, STDIN, STDOUT, frame, unframe
from tests.agent.bundle_support import (
    assign,
    push,
    relay,
    serve_artifacts,
    start_agent,
    wait_reported,
)
from tests.agent.support import Admin, Agents
from tests.components import free_port
from tests.conftest import LiveServer
from tests.server.session_support import ScriptedDevice, attach, online_device, running
from tests.web.browser import chromium, expect, signed_in, snap


async def answer_logs_and_shell(opened: dict[str, Any], ws: ClientConnection) -> None:
    """Logs: two lines (one on stderr). Shell: a prompt, then echo each keystroke until `q`."""
    if opened["kind"] == "logs":
        await ws.send(frame(STDOUT, b"12:00:01 monitor started\n"))
        await ws.send(frame(STDERR, b"12:00:02 sensor 3 not answering\n"))
        await ws.send(json.dumps({"type": "exit", "code": 0}))
        return
    await ws.send(frame(STDOUT, b"pi@pi-07:~$ "))
    typed = b""
    while not typed.endswith(b"q"):
        message = await ws.recv()
        if isinstance(message, bytes):
            stream, data = unframe(message)
            assert stream == STDIN
            typed += data
            await ws.send(frame(STDOUT, data))
    await ws.send(json.dumps({"type": "exit", "code": 0}))


async def test_logs_terminal_and_cordon_from_the_device_page(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    device = ScriptedDevice(server.url, await online_device(api, "pi-07"), answer_logs_and_shell)
    await api.put("/api/v1/remote-access", json={"enabled": True})
    async with running(device), chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/devices/pi-07")
        await page.get_by_label("Unit").fill("monitor")
        await page.get_by_role("button", name="Show").click()
        output = page.locator("#logs-output")
        # A device round trip (watch offer, the device's socket, the relay): more than the
        # 5 s default on a loaded CI machine.
        await expect(output).to_contain_text("monitor started", timeout=20_000)
        await expect(output.locator(".stderr")).to_contain_text("sensor 3 not answering")
        await expect(page.locator("#logs-status")).to_have_text("End of log.")
        assert device.opened[0]["unit"] == "monitor" and device.opened[0]["tail"] == 200

        await page.get_by_role("button", name="Open terminal").click()
        await expect(page.locator("#terminal-status")).to_have_text("Connected (recorded).")
        await expect(page.locator("#terminal")).to_contain_text("pi@pi-07:~$")
        await page.keyboard.type("ls q")
        await expect(page.locator("#terminal-status")).to_have_text("Shell exited with status 0.")
        await expect(page.locator("#terminal")).to_contain_text("pi@pi-07:~$ ls q")
        assert device.opened[1]["kind"] == "shell" and device.opened[1]["tty"] is True
        await snap(page, screenshots, "20-device-sessions")

        await page.get_by_role("button", name="Cordon").click()
        await expect(page.locator(".badge.warn")).to_have_text("cordoned")
        assert (await api.get("/api/v1/devices/pi-07")).json()["cordoned"] is True
        await page.get_by_role("button", name="Uncordon").click()
        await expect(page.locator(".badge.warn")).to_have_count(0)


async def test_a_refusal_is_shown_in_the_panel(server: LiveServer, api: httpx.AsyncClient) -> None:
    await online_device(api, "pi-07")
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/devices/pi-07")
        await page.get_by_role("button", name="Open terminal").click()
        await expect(page.locator("#terminal-status")).to_contain_text(
            "Error: remote access is off for this tenant"
        )


async def two_screens(opened: dict[str, Any], ws: ClientConnection) -> None:
    """A shell whose second screen comes 3 s after its first, then exits 0."""
    await ws.send(frame(STDOUT, b"pi@pi-07:~$ first screen\r\n"))
    await asyncio.sleep(3)
    await ws.send(frame(STDOUT, b"second screen\r\n"))
    await ws.send(json.dumps({"type": "exit", "code": 0}))


async def test_a_recorded_terminal_replays_from_the_device_page(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    device = ScriptedDevice(server.url, await online_device(api, "pi-07"), two_screens)
    await api.put("/api/v1/remote-access", json={"enabled": True})
    async with running(device):
        body = {"tty": True, "rows": 24, "cols": 80}
        created = (await api.post("/api/v1/devices/pi-07:exec", json=body)).json()
        await attach(server.url, server.admin_token, created)
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/devices/pi-07")
        row = page.locator(f'tr[data-session="{created["session"]}"]')
        await expect(row).to_contain_text("exit 0")
        await row.get_by_role("button", name="Replay").click()
        screen, status = page.locator("#replay-terminal"), page.locator("#replay-status")
        await expect(screen).to_contain_text("first screen")
        # The second screen is due 2 s later (a 3 s pause, shortened): pausing holds it back.
        await page.get_by_role("button", name="Pause").click()
        await expect(status).to_have_text("Paused.")
        await expect(screen).not_to_contain_text("second screen")
        await page.get_by_role("button", name="Skip to end").click()
        await expect(screen).to_contain_text("second screen")
        await expect(status).to_have_text("Ended.")
        await snap(page, screenshots, "21-device-session-replay")


@pytest.fixture
def kiosk(server: LiveServer, tmp_path: Path) -> Iterator[tuple[Admin, str]]:
    """A real agent (remote access allowed) running the relay app with RELAY_SITE set; the
    admin and the app's artifact sha256 (the name of the directory it runs in)."""
    admin, agents = Admin(server.url, server.admin_token), Agents()
    try:
        with contextlib.contextmanager(serve_artifacts)() as artifacts:
            flag = tmp_path / "flag"
            flag.touch()
            bundle = relay("1.0.0", artifacts, free_port(), flag)
            bundle["apps"][0]["env"] = {"RELAY_SITE": "oslo-harbour"}
            start_agent(server, admin, agents, tmp_path, "kiosk-1", remote_access="true")
            push(admin, bundle)
            assign(admin, "relay@1.0.0", devices=["kiosk-1"])
            wait_reported(admin, "kiosk-1", "running", "1.0.0")
            yield admin, bundle["apps"][0]["artifact"]["sha256"]
    finally:
        agents.stop_all()
        admin.close()
        _stop_apps_under(tmp_path)  # a native app outlives its agent by design


def _stop_apps_under(root: Path) -> None:
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid != os.getpid() and process.cwd().startswith(str(root)):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


async def test_the_terminal_opens_in_the_unit_chosen(
    server: LiveServer, api: httpx.AsyncClient, kiosk: tuple[Admin, str], screenshots: Path
) -> None:
    _admin, sha256 = kiosk
    await api.put("/api/v1/remote-access", json={"enabled": True})
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/devices/kiosk-1")
        picker = page.locator("#terminal-unit")  # "Open in" alone also matches "Open incidents"
        await expect(picker.locator("option")).to_have_text(["host", "relay-controller (app)"])
        await picker.select_option("relay-controller")
        await page.get_by_role("button", name="Open terminal").click()
        status, screen = page.locator("#terminal-status"), page.locator("#terminal")
        await expect(status).to_have_text(
            "Connected to relay-controller (recorded).", timeout=20_000
        )
        # Typed with $ signs, so only the shell's answers carry the values.
        await page.keyboard.type('echo "site=$RELAY_SITE dir=${PWD##*/}"; exit 4')
        await page.keyboard.press("Enter")
        await expect(status).to_have_text("Shell exited with status 4.", timeout=20_000)
        await expect(screen).to_contain_text(f"site=oslo-harbour dir={sha256}")
        await snap(page, screenshots, "22-device-terminal-in-unit")
    started = (await api.get("/api/v1/events", params={"type": "session.started"})).json()
    assert [e["data"]["unit"] for e in started["items"]] == ["relay-controller"]
