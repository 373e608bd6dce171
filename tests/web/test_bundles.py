"""Pushing a bundle from the YAML editor, assigning it, and seeing why an update failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from signalbeam.sim.device import FAILURE_REASONS, Behaviour, VirtualDevice
from signalbeam.sim.stats import FleetStats
from tests.conftest import LiveServer
from tests.helpers import enroll, enrollment_token
from tests.web.browser import Page, chromium, expect, signed_in, snap

BUNDLE = """\
name: warehouse-monitor
version: {version}
containers:
  - name: monitor
    image: 127.0.0.1:5000/monitor:{version}
"""


@asynccontextmanager
async def virtual_device(
    server: LiveServer, api: httpx.AsyncClient, device_id: str, fail_rate: float
) -> AsyncIterator[VirtualDevice]:
    """A simulated device speaking device API v1 to the live server, syncing twice a second."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        credential = await enroll(client, await enrollment_token(api), device_id)
        behaviour = Behaviour(interval=0.5, apply_time=0.0, fail_rate=fail_rate, watch=True)
        device = VirtualDevice(
            device_id, credential, seed=7, behaviour=behaviour, client=client, stats=FleetStats()
        )
        device.start()
        try:
            yield device
        finally:
            device.stop()


async def push(page: Page, url: str, document: str) -> None:
    await page.goto(url + "/bundles/new")
    await page.get_by_label("Bundle (YAML)").fill(document)
    await page.get_by_role("button", name="Validate and push").click()


async def assign(page: Page, version: str, device_id: str) -> None:
    await page.get_by_label("Version to assign").select_option(version)
    await page.get_by_role("radio", name="Devices").check()
    await page.get_by_label("Device ids").fill(device_id)
    await page.get_by_role("button", name="Assign").click()


async def test_push_assign_and_see_the_failure_reason(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with (
        virtual_device(server, api, "scale-1", fail_rate=0.0) as device,
        chromium() as browser,
        signed_in(browser, server.url) as page,
    ):
        await page.get_by_role("link", name="Bundles").click()
        await expect(page.get_by_text("No bundles yet")).to_be_visible()

        # Validation errors are listed under the editor, and the text stays as typed.
        broken = BUNDLE.format(version="1.0.0").replace("image:", "imag:")
        await push(page, server.url, broken)
        problems = page.get_by_role("list", name="Problems")
        await expect(problems).to_contain_text("containers[0].image: required")
        await expect(problems).to_contain_text("containers[0].imag: unknown key")
        await expect(page.get_by_label("Bundle (YAML)")).to_have_value(broken)
        await snap(page, screenshots, "06-bundle-push-errors")

        await push(page, server.url, "name: warehouse-monitor\ncontainers: [\n")
        await expect(problems).to_contain_text("YAML syntax error at line 3")

        await push(page, server.url, BUNDLE.format(version="1.0.0"))
        await expect(page.get_by_role("status")).to_contain_text("Pushed warehouse-monitor@1.0.0")
        await push(page, server.url, BUNDLE.format(version="1.1.0"))
        await expect(page.get_by_role("status")).to_contain_text("Pushed warehouse-monitor@1.1.0")

        await page.get_by_role("button", name="Show diff").click()
        await expect(page.locator("pre.diff .add").first).to_contain_text("monitor:1.1.0")
        await expect(page.locator("pre.diff .del").first).to_contain_text("monitor:1.0.0")

        await assign(page, "1.0.0", "scale-1")
        await expect(page.get_by_role("status")).to_contain_text("to 1 device")
        await snap(page, screenshots, "07-bundle")

        await page.goto(server.url + "/devices/scale-1")
        state = page.locator("#device-state")
        await expect(state.locator("[data-status]")).to_have_text("Running")
        await expect(state).to_contain_text("warehouse-monitor@1.0.0")
        await expect(state.get_by_role("cell", name="monitor", exact=True)).to_be_visible()

        # The next update fails on the device; its page says why, without a reload.
        device.behaviour = Behaviour(interval=0.5, apply_time=0.0, fail_rate=1.0, watch=True)
        await api.post(
            "/api/v1/bundles/warehouse-monitor/versions/1.1.0/assign", json={"devices": ["scale-1"]}
        )
        await expect(state.locator("[data-status]")).to_have_text("Failed")
        reason = await state.locator(".failure-reason").inner_text()
        assert reason in FAILURE_REASONS
        await expect(state).to_contain_text("keeps running the last good version")
        await snap(page, screenshots, "08-device-failed")

        await page.goto(server.url + "/")
        await expect(page.locator("#fleet-counts")).to_contain_text("1Failing")


async def test_rollout_previewed_started_and_watched_to_the_end(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    await api.post("/api/v1/groups", json={"name": "scales"})
    async with (
        virtual_device(server, api, "scale-a", fail_rate=0.0),
        virtual_device(server, api, "scale-b", fail_rate=0.0),
        chromium() as browser,
        signed_in(browser, server.url) as page,
    ):
        members = {"devices": ["scale-a", "scale-b"]}
        assert (await api.post("/api/v1/groups/scales/members", json=members)).status_code == 200
        await push(page, server.url, BUNDLE.format(version="2.0.0"))
        await page.get_by_role("link", name="Rollouts").click()
        await expect(page.get_by_text("No rollouts yet")).to_be_visible()
        await page.get_by_role("link", name="New rollout").click()
        await page.get_by_label("Waves (cumulative)").fill("1,100%")
        await page.get_by_label("Soak (healthy for)").fill("0s")
        await page.get_by_role("button", name="Preview waves").click()
        preview = page.locator("#plan")
        await expect(preview).to_contain_text("warehouse-monitor@2.0.0 to 2 devices")
        await expect(preview).to_contain_text("Wave 1: 1 device")
        await expect(preview).to_contain_text("Wave 2: 1 device")
        await snap(page, screenshots, "15-rollout-preview")

        await page.get_by_role("button", name="Start rollout").click()
        await expect(page.locator("[data-rollout-status]")).to_have_text(
            "Completed", timeout=30_000
        )
        await expect(page.locator('[data-device-status="succeeded"]')).to_have_count(2)
        await snap(page, screenshots, "16-rollout-completed")

        await page.get_by_role("link", name="Rollouts").click()
        await expect(page.locator('tr[data-rollout-id="1"]')).to_contain_text("Completed")
        await snap(page, screenshots, "18-rollouts")
        await page.get_by_role("link", name="Bundles").click()
        await expect(page.get_by_role("link", name="warehouse-monitor")).to_be_visible()
        await snap(page, screenshots, "19-bundles")


async def test_failing_rollout_halts_and_says_why(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    await api.post("/api/v1/groups", json={"name": "broken", "selector": "fleet=broken"})
    async with (
        virtual_device(server, api, "broken-1", fail_rate=1.0),
        virtual_device(server, api, "broken-2", fail_rate=1.0),
        chromium() as browser,
        signed_in(browser, server.url) as page,
    ):
        for device_id in ("broken-1", "broken-2"):
            patch = {"set": {"fleet": "broken"}}
            response = await api.patch(f"/api/v1/devices/{device_id}/labels", json=patch)
            assert response.status_code == 200, response.text
        await push(page, server.url, BUNDLE.format(version="3.0.0"))
        await page.goto(server.url + "/rollouts/new")
        await page.get_by_label("Group", exact=True).select_option("broken")
        await page.get_by_label("Waves (cumulative)").fill("1,100%")
        await page.get_by_label("Then").select_option("pause")
        await page.get_by_label("Soak (healthy for)").fill("soon")
        await page.get_by_role("button", name="Start rollout").click()
        await expect(page.locator("#soak-error")).to_be_visible()

        await page.get_by_label("Soak (healthy for)").fill("0s")
        await page.get_by_role("button", name="Start rollout").click()
        await expect(page.locator("[data-rollout-status]")).to_have_text("Halted", timeout=30_000)
        failure = page.get_by_role("alert").filter(has_text="Failures")
        reason = (await failure.locator("li").first.inner_text()).split(": ", 1)[1]
        assert reason in FAILURE_REASONS
        await expect(page.get_by_role("button", name="Resume")).to_be_visible()
        await snap(page, screenshots, "17-rollout-halted")

        page.on("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Roll back").click()
        await expect(page.locator("[data-rollout-status]")).to_have_text("Rolled back")
        await expect(page.get_by_role("button", name="Resume")).to_have_count(0)
