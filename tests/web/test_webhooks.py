"""Webhooks in the dashboard, in chromium: added with errors by the field, a signed test reaches a
real receiver and is logged with its status code, Redeliver sends it again, an edit reroutes
real events, removal; a viewer sees everything and no button, and the server refuses their
posts; an operator may test and redeliver but not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.helpers import eventually
from tests.server.receivers import HttpReceiver, http_receiver
from tests.web.browser import Page, chromium, expect, signed_in, snap

WEBHOOKS = "/api/v1/webhooks"


def heard(receiver: HttpReceiver, count: int) -> Any:
    async def check() -> bool:
        return len(receiver.requests) >= count

    return check


async def add_with_mistakes(page: Page, url: str) -> str:
    """Fill the add form, fixing what the server points at field by field; the shown key."""
    form = page.locator("#new-webhook")
    await form.get_by_label("Name").fill("Ops Feed")
    await form.get_by_label("URL").fill(url)
    await form.get_by_label("Events").fill("device.registered, device.exploded")
    await form.get_by_role("button", name="Add webhook").click()
    await expect(page.locator("#name-error")).to_contain_text(
        'webhook name "Ops Feed" is not valid'
    )
    await expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_label("URL")).to_have_value(url)  # what was typed stays

    await form.get_by_label("Name").fill("ops-feed")
    await form.get_by_role("button", name="Add webhook").click()
    await expect(page.locator("#events-error")).to_contain_text(
        "unknown event type device.exploded"
    )
    await form.get_by_label("Events").fill("device.registered, rollout.*")
    await form.get_by_label("URL").fill("ftp://127.0.0.1/hook")
    await form.get_by_role("button", name="Add webhook").click()
    await expect(page.locator("#url-error")).to_contain_text("is not an http(s) URL")

    await form.get_by_label("URL").fill(url)
    await form.get_by_label("Signing key (empty: one is made and shown once)").fill("too short")
    await form.get_by_role("button", name="Add webhook").click()
    await expect(page.locator("#secret-error")).to_contain_text("a signing key needs 16 to 500")
    await expect(
        form.get_by_label("Signing key (empty: one is made and shown once)")
    ).to_have_value("")

    await form.get_by_role("button", name="Add webhook").click()
    return (await page.locator("#signing-key").inner_text()).strip()


async def test_a_webhook_is_added_tested_redelivered_changed_and_removed(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    with http_receiver() as receiver:
        async with chromium() as browser, signed_in(browser, server.url) as page:
            await page.get_by_role("link", name="Webhooks").click()
            await expect(page.locator("main")).to_contain_text("No webhooks yet.")
            key = await add_with_mistakes(page, receiver.url)
            row = page.locator('tr[data-webhook="ops-feed"]')
            await expect(row).to_contain_text(receiver.url)
            await expect(row).to_contain_text("device.registered, rollout.*")
            await expect(row.locator("[data-enabled]")).to_have_text("On")
            await expect(row.locator("[data-last-delivery]")).to_have_text("none yet")
            await snap(page, screenshots, "45-webhooks")

            await row.get_by_role("button", name="Send test").click()
            await expect(page.locator("#test-result")).to_have_text(
                "Delivered: the receiver answered HTTP 200"
            )
            (test,) = receiver.requests
            assert test.signed_by(key) and test.json()["event"]["type"] == "webhook.test"
            sent = page.locator("tr[data-delivery-id]")
            await expect(sent).to_have_count(1)
            await expect(sent.locator("[data-delivery-state]")).to_have_text("delivered")
            await expect(sent.locator("[data-status-code]")).to_have_text(["200"])

            await sent.get_by_role("button", name="Redeliver").click()
            await eventually(heard(receiver, 2), "the redelivery reaching the receiver")
            again = receiver.requests[1]
            assert again.signed_by(key) and again.body == test.body
            await page.reload()
            await expect(sent.locator("[data-status-code]")).to_have_text(["200", "200"])
            await expect(sent.locator("[data-delivery-state]")).to_have_text("delivered")
            await expect(page.locator("#webhook-secret")).to_have_text("set (never shown again)")
            assert key not in await page.content(), "the signing key is never shown again"
            await snap(page, screenshots, "46-webhook")

            await change_to_groups(page, api, receiver)

            page.on("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("link", name="All webhooks").click()
            await row.get_by_role("button", name="Remove webhook ops-feed").click()
            await expect(page.locator("main")).to_contain_text("No webhooks yet.")
    assert (await api.get(WEBHOOKS)).json() == []


async def change_to_groups(page: Page, api: httpx.AsyncClient, receiver: HttpReceiver) -> None:
    """Edit the webhook to groups' events (a bad selector first); a real one is logged."""
    form = page.locator("#edit-webhook")
    await expect(form.get_by_label("Events")).to_have_value("device.registered, rollout.*")
    await form.get_by_label("Events").fill("group.*")
    await form.get_by_label("Only devices matching (optional)").fill("site in (")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#selector-error")).to_contain_text('selector "site in (" is not')
    await form.get_by_label("Only devices matching (optional)").fill("")
    await form.get_by_role("button", name="Save").click()
    await expect(page.locator("#webhook-events")).to_have_text("group.*")
    await expect(page.locator("#webhook-secret")).to_have_text("set (never shown again)")

    assert (await api.post("/api/v1/groups", json={"name": "kiosks"})).status_code == 201
    await eventually(heard(receiver, 3), "the group's creation reaching the receiver")
    assert receiver.requests[2].json()["event"]["type"] == "group.created"
    await page.reload()
    newest = page.locator("tr[data-delivery-id]").first
    await expect(newest.get_by_role("link", name="group.created")).to_be_visible()
    await expect(newest.locator("[data-status-code]")).to_have_text(["200"])


async def test_a_viewer_sees_webhooks_but_no_buttons_and_is_refused(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    for username, role in (("vera", "viewer"), ("otto", "operator")):
        body = {"username": username, "role": role, "password": f"{role} password 1"}
        assert (await api.post("/api/v1/users", json=body)).status_code == 201
    with http_receiver() as receiver:
        created = {"name": "ops", "url": receiver.url, "events": ["device.*"]}
        assert (await api.post(WEBHOOKS, json=created)).status_code == 201
        assert (await api.post(f"{WEBHOOKS}/ops/test")).json()["delivered"]
        (delivery,) = (await api.get(f"{WEBHOOKS}/ops/deliveries")).json()
        async with chromium() as browser:
            async with signed_in(browser, server.url, "vera", "viewer password 1") as page:
                for path in ("/webhooks", "/webhooks/ops"):
                    await page.goto(server.url + path)
                    await expect(page.locator("main")).to_contain_text(receiver.url)
                    await expect(page.locator("main")).to_contain_text("HTTP 200")
                    assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
                await snap(page, screenshots, "47-viewer-webhook")
                await refused(page, server.url, delivery["id"])
            async with signed_in(browser, server.url, "otto", "operator password 1") as page:
                await page.goto(server.url + "/webhooks/ops")
                buttons = await page.get_by_role("button").all_inner_texts()
                assert sorted(buttons) == ["Redeliver", "Send test", "Sign out"]
        assert len(receiver.requests) == 1, "nothing a viewer posted was sent"
    shown = (await api.get(f"{WEBHOOKS}/ops")).json()
    assert (shown["url"], shown["events"], shown["enabled"]) == (receiver.url, ["device.*"], True)
    assert [w["name"] for w in (await api.get(WEBHOOKS)).json()] == ["ops"]


async def refused(page: Page, url: str, delivery_id: int) -> None:
    """Every write the dashboard offers, posted by the viewer with a valid CSRF token: 403."""
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    fields = {"url": "http://127.0.0.1:9/x", "events": "*", "name": "mine", "enabled": "on"}
    for path in (
        "/webhooks",
        "/webhooks/ops",
        "/webhooks/ops/test",
        f"/webhooks/ops/deliveries/{delivery_id}/redeliver",
        "/webhooks/ops/delete",
    ):
        answer = await page.request.post(url + path, form={"csrf": csrf, **fields})
        assert answer.status == 403, path
        assert "you are viewer" in await answer.text(), path
