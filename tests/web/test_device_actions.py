"""The device page's Restart (per unit), Restart agent, Reboot and Drain buttons, in chromium."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.conftest import LiveServer
from tests.server.session_support import ScriptedDevice, online_device, running
from tests.server.test_device_actions import BOOT_A, answer_actions
from tests.web.browser import chromium, expect, signed_in, snap

UNITS = {"items": [{"kind": "app", "name": "web", "state": "running", "restart_count": 0}]}


@asynccontextmanager
async def syncing(api: httpx.AsyncClient, credential: str) -> AsyncIterator[None]:
    """The device's heartbeat (its boot id and its one unit) until the block ends."""
    headers = {"Authorization": f"Bearer {credential}"}
    body = {"heartbeat": {"boot_id": BOOT_A}, "reported": UNITS}

    async def beat() -> None:
        while True:
            await api.post("/api/device/v1/sync", json=body, headers=headers)
            await asyncio.sleep(0.5)

    task = asyncio.create_task(beat())
    try:
        await api.post("/api/device/v1/sync", json=body, headers=headers)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_device_actions_from_the_device_page(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    credential = await online_device(api, "pi-07")
    device = ScriptedDevice(server.url, credential, answer_actions)
    async with (
        syncing(api, credential),
        running(device),
        chromium() as browser,
        signed_in(browser, server.url) as page,
    ):
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.goto(server.url + "/devices/pi-07")
        await expect(page.get_by_text(BOOT_A)).to_be_visible()
        flash = page.locator("p.flash")

        await page.get_by_role("button", name="Restart web").click()
        await expect(flash).to_have_text("Restart web: restarted web.")
        await page.get_by_role("button", name="Restart agent").click()
        await expect(flash).to_have_text("Restart agent: restarting the agent.")
        await page.get_by_role("button", name="Reboot").click()
        await expect(flash).to_contain_text("Reboot: rebooting; done once it reports a new boot id")
        await expect(page.locator(".badge", has_text="rebooting")).to_be_visible()
        await snap(page, screenshots, "22-device-actions")
        await page.get_by_role("button", name="Drain").click()
        await expect(flash).to_contain_text("Drain: cordoned; stopping its units")
        await expect(page.locator(".badge.warn")).to_have_text("cordoned")

    assert [o["action"] for o in device.opened] == ["restart", "restart-agent", "reboot"]
    assert device.opened[0]["unit"] == "web"
    shown = (await api.get("/api/v1/devices/pi-07")).json()
    assert shown["cordoned"] is True and shown["rebooting_since"] is not None


async def test_a_refused_action_is_shown_and_viewers_get_no_buttons(
    server: LiveServer, api: httpx.AsyncClient
) -> None:
    credential = await online_device(api, "pi-07")
    body = {"username": "vera", "role": "viewer", "password": "viewer password 1"}
    assert (await api.post("/api/v1/users", json=body)).status_code == 201
    async with syncing(api, credential), chromium() as browser:
        async with signed_in(browser, server.url) as page:
            await page.goto(server.url + "/devices/pi-07")
            await page.get_by_role("button", name="Restart agent").click()
            # No device answers: the page says why, by the form.
            await expect(page.locator(".error").first).to_contain_text(
                "Restart agent: did not connect for the restart-agent within 10 s", timeout=30_000
            )
        async with signed_in(browser, server.url, "vera", "viewer password 1") as page:
            await page.goto(server.url + "/devices/pi-07")
            await expect(page.get_by_role("cell", name="web")).to_be_visible()
            names = await page.get_by_role("button").all_inner_texts()
            for hidden in ("Restart", "Restart agent", "Reboot", "Drain", "Cordon"):
                assert hidden not in names
