"""Enrollment, groups, activity and users pages; roles, escaping and CSRF."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import LiveServer
from tests.helpers import enroll, enrollment_token, sync
from tests.web.browser import chromium, expect, signed_in, snap


async def test_enrollment_token_gives_a_working_install_command_and_can_be_revoked(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.get_by_role("link", name="Enrollment", exact=True).click()
        await expect(page.get_by_text("No enrollment tokens yet")).to_be_visible()

        await page.get_by_label("Labels for new devices").fill("env=prod, bad label")
        await page.get_by_role("button", name="Create token").click()
        await expect(page.locator("#labels-error")).to_contain_text("bad label")

        await page.get_by_label("Labels for new devices").fill("env=prod, site=oslo")
        await page.get_by_label("Description").fill("Oslo batch")
        await page.get_by_role("button", name="Create token").click()
        command = await page.locator("#install-command").inner_text()
        assert command.startswith("pip install signalbeam && signalbeam-agent register")
        assert f"--server {server.url}" in command
        await snap(page, screenshots, "09-enrollment")

        # The token in the command really enrolls a device, with the token's labels.
        secret = command.split("--token ")[1].split(" ")[0]
        await enroll(device_api, secret, "from-command")
        device = (await api.get("/api/v1/devices/from-command")).json()
        assert device["labels"] == {"env": "prod", "site": "oslo"}

        await page.goto(server.url + "/enrollment")
        row = page.locator('tr[data-token-id="1"]')
        await expect(row).to_contain_text("Usable")
        page.on("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name="Revoke").click()
        await expect(row).to_contain_text("Revoked")


async def test_groups_dynamic_with_a_live_preview_and_static_with_members(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    for name, env in (("a-1", "prod"), ("a-2", "prod"), ("b-1", "test")):
        credential = await enroll(
            device_api, await enrollment_token(api, labels={"env": env}), name
        )
        assert (await sync(device_api, credential)).status_code == 200
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/groups")
        await expect(page.get_by_text("No groups yet")).to_be_visible()
        await page.get_by_label("Name").fill("production")
        await page.get_by_label("Kind").select_option("dynamic")
        await page.get_by_label("Selector (dynamic groups)").fill("env=prod")
        await expect(page.locator("#selector-preview")).to_contain_text("2 devices match")
        await page.get_by_label("Selector (dynamic groups)").fill("env in (prod")
        await expect(page.locator("#selector-preview .error")).to_be_visible()
        await page.get_by_label("Selector (dynamic groups)").fill("env=prod")
        await page.get_by_role("button", name="Create group").click()
        await expect(page.get_by_role("heading", name="production")).to_be_visible()
        await expect(page.get_by_role("link", name="a-1")).to_be_visible()
        await expect(page.get_by_role("link", name="b-1")).to_have_count(0)
        await snap(page, screenshots, "10-group")

        await page.goto(server.url + "/groups")
        await page.get_by_label("Name").fill("production")
        await page.get_by_role("button", name="Create group").click()
        await expect(page.locator("#name-error")).to_contain_text("already exists")
        await snap(page, screenshots, "11-groups")

        # A static group: members are added by id, with unknown ids named in the error.
        await page.get_by_label("Name").fill("lab")
        await page.get_by_role("button", name="Create group").click()
        await expect(page.get_by_text("No members yet")).to_be_visible()
        await page.get_by_label("Device ids").fill("b-1, nope-9")
        await page.get_by_role("button", name="Add", exact=True).click()
        await expect(page.locator("#devices-error")).to_contain_text("nope-9")
        await page.get_by_label("Device ids").fill("b-1")
        await page.get_by_role("button", name="Add", exact=True).click()
        await expect(page.get_by_role("link", name="b-1")).to_be_visible()
        await page.get_by_role("button", name="Remove").click()
        await expect(page.get_by_text("No members yet")).to_be_visible()


async def test_activity_feed_updates_live_and_filters(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.get_by_role("link", name="Activity").click()
        await expect(page.locator(".live")).to_have_text("Live")
        await enroll(device_api, await enrollment_token(api), "newcomer")
        await expect(page.locator("#activity-feed")).to_contain_text("device newcomer registered")
        await snap(page, screenshots, "12-activity")
        await page.get_by_label("Type").select_option("device.registered")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#activity-feed li")).to_have_count(1)


async def test_users_page_creates_a_user_and_an_api_token(
    server: LiveServer, api: httpx.AsyncClient, screenshots: Path
) -> None:
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.get_by_role("link", name="Users & tokens").click()
        await page.get_by_label("Username").fill("olga")
        await page.get_by_label("Role").select_option("viewer")
        await page.get_by_label("Password", exact=True).fill("short")
        await page.get_by_role("button", name="Add user").click()
        await expect(page.locator("#password-error")).to_contain_text("too short")

        await page.get_by_label("Password", exact=True).fill("a long enough password")
        await page.get_by_role("button", name="Add user").click()
        await expect(page.get_by_role("status")).to_contain_text("User olga created as viewer")

        await page.get_by_label("Name", exact=True).fill("ci-deploy")
        await page.get_by_role("button", name="Create token").click()
        secret = await page.locator("#api-token-secret").inner_text()
        await snap(page, screenshots, "13-users")
    async with httpx.AsyncClient(base_url=server.url) as client:
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == "admin"


async def test_viewer_sees_no_buttons_that_would_fail(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    body = {"username": "vera", "role": "viewer", "password": "viewer password 1"}
    assert (await api.post("/api/v1/users", json=body)).status_code == 201
    await sync(device_api, await enroll(device_api, await enrollment_token(api), "pi-9"))
    async with (
        chromium() as browser,
        signed_in(browser, server.url, "vera", "viewer password 1") as page,
    ):
        await expect(page.get_by_role("link", name="pi-9")).to_be_visible()
        await expect(page.get_by_role("link", name="Add devices")).to_have_count(0)
        await page.get_by_role("link", name="pi-9").click()
        await expect(page.get_by_role("heading", name="Facts")).to_be_visible()
        # Viewers may read logs, so "Show" works for them; nothing that would be refused shows.
        assert await page.get_by_role("button").all_inner_texts() == ["Sign out", "Show"]
        await page.goto(server.url + "/enrollment")
        await expect(page.get_by_role("button", name="Create token")).to_have_count(0)
        await page.goto(server.url + "/bundles")
        await expect(page.get_by_role("link", name="Push a version")).to_have_count(0)
        await snap(page, screenshots, "14-viewer-device")


async def test_device_names_are_shown_as_text_never_as_markup(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient
) -> None:
    hostile = "<img src=x onerror=\"document.title='owned'\">"
    token = await enrollment_token(api)
    await sync(device_api, await enroll(device_api, token, "evil-1", name=hostile))
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await expect(page.get_by_text(hostile)).to_be_visible()
        await page.goto(server.url + "/devices/evil-1")
        await expect(page.get_by_role("heading", name=hostile)).to_be_visible()
        assert await page.locator("img").count() == 0
        assert await page.title() != "owned"


async def test_forms_without_the_session_csrf_token_are_refused(
    server: LiveServer, api: httpx.AsyncClient
) -> None:
    async with chromium() as browser, signed_in(browser, server.url) as page:
        cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies) as client:
        form = {"name": "sneaky", "kind": "static", "csrf": "guessed"}
        response = await client.post("/groups", data=form)
        assert response.status_code == 403
        assert "reload the page" in response.text
        assert (await api.get("/api/v1/groups")).json() == []
