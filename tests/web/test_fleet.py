"""Signing in, the fleet overview updating live, and editing a device's labels, in chromium."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import LiveServer
from tests.helpers import enroll, enrollment_token, sync
from tests.web.browser import TABLET, chromium, expect, signed_in, snap


async def test_sign_in_rejects_a_wrong_password_next_to_the_field(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(server.url + "/devices/anything")
        await expect(page).to_have_url(server.url + "/login?next=/devices/anything")
        await page.get_by_label("Username").fill("admin")
        await page.get_by_label("Password", exact=True).fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("wrong tenant, username or password")
        await expect(page.get_by_label("Password", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        await snap(page, screenshots, "01-login")


async def test_device_comes_online_live_and_its_labels_can_be_edited(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await expect(page.get_by_text("No devices yet")).to_be_visible()
        await snap(page, screenshots, "02-fleet-empty")

        # A device enrolls and syncs while the page is open: it appears without a reload.
        credential = await enroll(device_api, await enrollment_token(api), "kiosk-7")
        row = page.locator('tr[data-device-id="kiosk-7"]')
        await expect(row.locator("[data-presence]")).to_have_text("New")
        assert (await sync(device_api, credential)).status_code == 200
        await expect(row.locator("[data-presence]")).to_have_text("Online")
        await expect(row).to_contain_text("12%")  # cpu from the heartbeat (12.5), rounded
        await expect(page.locator("#fleet-counts")).to_contain_text("1Online")
        await snap(page, screenshots, "03-fleet")

        await row.get_by_role("link", name="kiosk-7").click()
        await page.get_by_label("Key").fill("site")
        await page.get_by_label("Value").fill("oslo")
        await page.get_by_role("button", name="Set label").click()
        await expect(page.locator('[data-label="site"]')).to_contain_text("site=oslo")

        await page.get_by_label("Key").fill("bad key!")
        await page.get_by_role("button", name="Set label").click()
        await expect(page.locator("#key-error")).to_contain_text("bad key!")
        await expect(page.get_by_label("Key")).to_have_attribute("aria-invalid", "true")

        await page.get_by_role("button", name="Remove label site").click()
        await expect(page.locator('[data-label="site"]')).to_have_count(0)
        await expect(page.locator("#device-state")).to_contain_text("labels changed")
        await snap(page, screenshots, "04-device")

        # Keyboard first: the skip link is the first stop, then straight into the page.
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

        page.on("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Decommission").click()
        await expect(page.locator("header [data-presence]")).to_have_text("Decommissioned")
        await expect(page.get_by_role("button", name="Decommission")).to_have_count(0)
        assert (await sync(device_api, credential)).status_code == 401
        await page.get_by_role("link", name="Fleet").click()
        await expect(page.get_by_text("No devices yet")).to_be_visible()


async def test_fleet_filters_by_selector_and_reports_a_bad_one(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    for name, site in (("oslo-1", "oslo"), ("oslo-2", "oslo"), ("bergen-1", "bergen")):
        token = await enrollment_token(api, labels={"site": site})
        assert (await sync(device_api, await enroll(device_api, token, name))).status_code == 200
    async with chromium() as browser, signed_in(browser, server.url, viewport=TABLET) as page:
        await page.get_by_label("Label selector").fill("site=oslo")
        await page.get_by_label("Label selector").press("Enter")
        await expect(page.locator("tr[data-device-id]")).to_have_count(2)
        await expect(page).to_have_url(server.url + "/?selector=site%3Doslo")
        await snap(page, screenshots, "05-fleet-filtered-tablet")

        await page.get_by_label("Label selector").fill("site in (oslo")
        await page.get_by_label("Label selector").press("Enter")
        await expect(page.locator("#selector-error")).to_be_visible()
