"""The device page's Logs, Terminal and Recent sessions panels and cordon button, in a real
chromium."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from signalbeam.protocol.sessions import STDERR, STDIN, STDOUT, frame, unframe
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
