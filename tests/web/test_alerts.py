"""Alerts in the dashboard, in chromium: an offline device fires live and is acknowledged from
its incident page; rules are checked by field and previewed; a webhook answers its test; a
viewer sees everything and no button that would be refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.conftest import start_fast_server, stop_or_explain
from tests.components import free_port
from tests.conftest import LiveServer
from tests.helpers import enroll, enrollment_token, eventually, new_device, sync
from tests.server.receivers import http_receiver
from tests.web.browser import chromium, expect, signed_in, snap
from tests.web.conftest import browser_available

# A silent device is offline after three missed 1 s syncs; firing and a live refresh follow.
FIRING_MS = 30_000


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A real server syncing every 1 s, so a silent device goes offline within seconds."""
    browser_available()
    live = start_fast_server(tmp_path / "server", database_url, free_port())
    yield live
    stop_or_explain(live)


async def offline_fast(api: httpx.AsyncClient) -> None:
    response = await api.patch("/api/v1/alerts/rules/device-offline", json={"for": "1s"})
    assert response.status_code == 200, response.text


async def keep_syncing(device_api: httpx.AsyncClient, credential: str) -> None:
    """A device that is back: it syncs every half second until cancelled."""
    while True:
        assert (await sync(device_api, credential)).status_code == 200
        await asyncio.sleep(0.5)  # the device's own sync interval, not a wait for the server


async def test_an_offline_device_fires_live_and_is_acknowledged_from_its_incident_page(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    await offline_fast(api)
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.get_by_role("link", name="Alerts", exact=True).click()
        await expect(page.locator(".live")).to_have_text("Live")
        await expect(page.get_by_text("Nothing is firing.")).to_be_visible()
        await page.evaluate("window.notReloaded = true")

        credential = await enroll(device_api, await enrollment_token(api), "kiosk-4")
        assert (await sync(device_api, credential)).status_code == 200
        labelled = await api.patch("/api/v1/devices/kiosk-4/labels", json={"set": {"site": "oslo"}})
        assert labelled.status_code == 200, labelled.text
        # Silent from now on: the incident shows up on the open page, without a reload.
        row = page.locator("#alerts-incidents tr[data-incident-id]")
        await expect(row.locator("[data-incident-state]")).to_have_text("Firing", timeout=FIRING_MS)
        await expect(row).to_contain_text("kiosk-4: device offline for 1s")
        assert await page.evaluate("window.notReloaded") is True
        await snap(page, screenshots, "30-alerts-firing")

        await page.get_by_role("link", name="Fleet").click()
        await expect(page.locator("[data-firing]")).to_have_text("1Firing")
        await page.locator('tr[data-device-id="kiosk-4"] a').first.click()
        on_device = page.locator("#device-incidents")
        await expect(on_device.locator("[data-incident-state]")).to_have_text("Firing")

        await on_device.get_by_role("link").click()
        await expect(page).to_have_url(re.compile(r"/alerts/\d+$"))
        await expect(page.get_by_role("link", name="kiosk-4")).to_have_attribute(
            "href", "/devices/kiosk-4"
        )
        await expect(page.locator("#cause")).to_contain_text("device.labels_changed")
        await page.get_by_role("button", name="Acknowledge").click()
        await expect(page.locator("header [data-incident-state]")).to_have_text("Acknowledged")
        await expect(page.locator(".facts")).to_contain_text("by user:admin")
        await expect(page.locator("#timeline")).to_contain_text("acknowledged")
        await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
        await snap(page, screenshots, "31-incident")

        # What changed before it, in the activity log at that very event.
        await page.get_by_role("link", name="Show it in the activity log").click()
        await expect(page.locator("li:target")).to_contain_text("device.labels_changed")
        await page.get_by_role("link", name="Fleet").click()
        await expect(page.locator("[data-firing]")).to_have_text("0Firing")  # acknowledged

        # The device is back and keeps syncing: the incident resolves itself, on the open page.
        await page.go_back()
        await page.go_back()
        online = asyncio.create_task(keep_syncing(device_api, credential))
        try:
            await expect(page.locator("header [data-incident-state]")).to_have_text(
                "Resolved", timeout=FIRING_MS
            )
            await expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
            await page.get_by_role("link", name="kiosk-4").click()
            await expect(page.locator("#device-incidents")).to_contain_text("No open incidents")
        finally:
            online.cancel()


async def test_a_rule_is_checked_by_field_and_previewed_and_a_webhook_answers_its_test(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    await new_device(api, device_api, "oslo-1", labels={"site": "oslo"})
    with http_receiver() as receiver:
        async with chromium() as browser, signed_in(browser, server.url) as page:
            await page.goto(server.url + "/alerts/rules")
            form = page.locator("#new-rule")
            await form.get_by_label("Name").fill("Oslo Offline")
            await form.get_by_label("For (how long it must last)").fill("1s")
            await form.get_by_label("Selector (optional)").fill("site=oslo")
            await form.get_by_role("button", name="Create rule").click()
            await expect(page.locator("#name-error")).to_contain_text(
                'rule name "Oslo Offline" is not valid'
            )
            await expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
            await expect(form.get_by_label("Selector (optional)")).to_have_value("site=oslo")

            async def offline() -> bool:
                found = (await api.get("/api/v1/devices/oslo-1")).json()
                return bool(found["presence"] == "offline")

            await eventually(offline, "oslo-1 going offline")
            await form.get_by_label("Name").fill("oslo-offline")
            await form.get_by_role("button", name="Preview").click()
            await expect(page.locator("#rule-preview")).to_contain_text("1 would fire now")
            await expect(page.locator("#rule-preview")).to_contain_text("oslo-1")
            await form.get_by_role("button", name="Create rule").click()
            row = page.locator('tr[data-rule="oslo-offline"]')
            await expect(row).to_contain_text("device offline for 1s")
            await expect(row).to_contain_text("site=oslo")
            await snap(page, screenshots, "32-alert-rules")

            await row.get_by_role("link", name="oslo-offline").click()
            await page.get_by_label("Severity").select_option("critical")
            await page.get_by_label("For (how long it must last)").fill("0s")
            await page.get_by_role("button", name="Save").click()
            await expect(page.locator("#for-error")).to_have_text(
                "`for` must be more than 0s and at most 7d"
            )
            await page.get_by_label("For (how long it must last)").fill("2s")
            await page.get_by_role("button", name="Save").click()
            await expect(row).to_contain_text("device offline for 2s")
            await expect(row.locator("[data-severity]")).to_have_text("critical")

            await page.get_by_role("link", name="Notifiers").click()
            await page.get_by_label("Name", exact=True).fill("ops")
            await page.get_by_label("URL").fill(receiver.url)
            await page.get_by_role("button", name="Add notifier").click()
            key = (await page.locator("#signing-key").inner_text()).strip()
            await (
                page.locator('tr[data-notifier="ops"]')
                .get_by_role("button", name="Send test")
                .click()
            )
            await expect(page.locator("#test-result")).to_have_text(
                "Delivered: the receiver answered HTTP 200"
            )
            assert receiver.requests[-1].signed_by(key)
            await expect(page.locator("[data-delivery-state]")).to_have_text("delivered")

            receiver.status = 503
            await page.get_by_role("button", name="Send test").click()
            await expect(page.locator("#test-result")).to_have_text(
                "Not delivered: the receiver answered HTTP 503: Service Unavailable"
            )
            dead = page.locator("tr[data-delivery-id]").first
            await expect(dead.locator("[data-delivery-state]")).to_have_text("dead")

            # The receiver is fixed: Redeliver sends the dead one again, through the worker.
            receiver.status = 200
            await dead.get_by_role("button", name="Redeliver").click()

            async def heard_again() -> bool:
                return len(receiver.requests) == 3

            await eventually(heard_again, "the redelivery reaching the receiver")
            await page.reload()
            await expect(dead.locator("[data-delivery-state]")).to_have_text("delivered")
            await snap(page, screenshots, "33-notifier")


async def test_a_viewer_sees_alerts_but_no_buttons(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    await offline_fast(api)
    body = {"username": "vera", "role": "viewer", "password": "viewer password 1"}
    assert (await api.post("/api/v1/users", json=body)).status_code == 201
    with http_receiver() as receiver:
        notifier = {"name": "ops", "kind": "webhook", "url": receiver.url}
        assert (await api.post("/api/v1/alerts/notifiers", json=notifier)).status_code == 201
        assert (await api.post("/api/v1/alerts/notifiers/ops/test")).json()["delivered"]
    await new_device(api, device_api, "pi-3")

    async def firing() -> int | None:
        found = (await api.get("/api/v1/alerts/incidents", params={"state": "firing"})).json()
        return int(found["items"][0]["id"]) if found["items"] else None

    incident = await eventually(firing, "pi-3's incident firing", timeout=FIRING_MS / 1000)
    async with (
        chromium() as browser,
        signed_in(browser, server.url, "vera", "viewer password 1") as page,
    ):
        pages = {
            "/alerts": "pi-3: device offline for 1s",
            f"/alerts/{incident}": "What changed before it",
            "/alerts/rules": "device-offline",
            "/alerts/rules/device-offline": "device offline for 1s",
            "/alerts/notifiers": receiver.url,
            "/alerts/notifiers/ops": "HTTP 200",
        }
        for path, shown in pages.items():
            await page.goto(server.url + path)
            await expect(page.locator("main")).to_contain_text(shown)
            assert await page.get_by_role("button").all_inner_texts() == ["Sign out"], path
        await snap(page, screenshots, "34-viewer-notifier")
