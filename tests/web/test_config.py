"""Config in the dashboard, in chromium: an operator changes LOG_LEVEL for the oslo group (a
bad key first, refused at the editor), sees the diff in a preview that writes nothing,
applies it, sees the new version in the history and the device's effective value with its
origin and status, sets a write-only secret, and rolls back; a viewer sees everything but no
form, and the server refuses their posts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.helpers import enroll, enrollment_token, sync
from tests.web.browser import Page, chromium, expect, signed_in, snap

GROUP = "/api/v1/config/groups/oslo"
SECRET = "s3cret-never-shown"
BUNDLE: dict[str, Any] = {
    "name": "site",
    "version": "1.0.0",
    "containers": [{"name": "web", "image": "127.0.0.1:5000/site:1.0.0"}],
}


async def oslo(api: httpx.AsyncClient, device_api: httpx.AsyncClient) -> str:
    """pi-07 (running a bundle) and pi-08 in the dynamic group oslo, whose layer has
    LOG_LEVEL=info as version 1; pi-07's credential."""
    token = await enrollment_token(api, labels={"site": "oslo"})
    credential = await enroll(device_api, token, "pi-07")
    await enroll(device_api, token, "pi-08")
    created = await api.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    assert created.status_code == 201, created.text
    assert (await api.post("/api/v1/bundles", json=BUNDLE)).status_code in (200, 201)
    assign = {"devices": ["pi-07"]}
    assigned = await api.post("/api/v1/bundles/site/versions/1.0.0/assign", json=assign)
    assert assigned.status_code == 200, assigned.text
    first = await api.patch(GROUP, json={"set": {"LOG_LEVEL": "info"}, "message": "start"})
    assert first.status_code == 200, first.text
    return credential


async def report_applied(device_api: httpx.AsyncClient, credential: str) -> None:
    """The device reports the config its desired state carries as applied, as its agent would."""
    desired = (await sync(device_api, credential, known_generation=-1)).json()["desired"]
    config = {"digest": desired["spec"]["config"]["digest"], "status": "applied"}
    reported = {"generation": desired["generation"], "status": "running", "config": config}
    assert (await sync(device_api, credential, reported=reported)).status_code == 200


async def preview_and_apply(page: Page, api: httpx.AsyncClient) -> None:
    """A bad key is refused at the editor; the preview shows the diff and writes nothing."""
    editor = page.get_by_label("Values (YAML)")
    await expect(editor).to_have_value("LOG_LEVEL: info\n")
    await editor.fill("LOG_LEVEL: debug\n1BAD: x\n")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#values-error")).to_contain_text("values.1BAD")
    await expect(editor).to_have_attribute("aria-invalid", "true")
    await expect(editor).to_have_value("LOG_LEVEL: debug\n1BAD: x\n")  # what was typed stays

    await editor.fill("LOG_LEVEL: debug\nRETRIES: 3\n")
    await page.get_by_label("Message").fill("more logs for the oslo outage")
    await page.get_by_role("button", name="Preview").click()
    preview = page.locator("#config-preview")
    # pi-08 runs no bundle, and config travels with a bundle: one device gets it.
    await expect(preview).to_contain_text("Preview: version 2, reaching 1 device")
    await expect(preview.locator('[data-change="LOG_LEVEL"]')).to_have_text(
        "LOG_LEVEL: info \u2192 debug"
    )
    await expect(preview.locator('[data-change="RETRIES"]')).to_have_text("RETRIES added: 3")
    assert (await api.get(GROUP)).json()["version"] == 1, "a preview writes nothing"
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator(".flash")).to_have_text("Applied: this is now version 2.")
    newest = page.locator("#config-history tr[data-version]").first
    await expect(newest).to_have_attribute("data-version", "2")
    await expect(newest).to_contain_text("more logs for the oslo outage")
    await expect(newest.locator('[data-change="LOG_LEVEL"]')).to_have_text(
        "LOG_LEVEL: info \u2192 debug"
    )
    await expect(page.locator('[data-count="pending"] b')).to_have_text("1")


async def effective(page: Page, key: str, value: str, origin: str) -> None:
    row = page.locator(f'#effective-config tr[data-key="{key}"]')
    await expect(row.locator("[data-value]")).to_have_text(value)
    await expect(row.locator("[data-origin]")).to_have_text(origin)


async def test_an_operator_changes_a_groups_log_level_and_rolls_it_back(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    credential = await oslo(api, device_api)
    async with chromium() as browser, signed_in(browser, server.url) as page:
        page.on("dialog", lambda dialog: dialog.accept())
        await page.goto(server.url + "/groups/oslo")
        await page.get_by_role("link", name="Configuration").first.click()
        await preview_and_apply(page, api)
        await snap(page, screenshots, "50-group-config")

        await page.goto(server.url + "/devices/pi-07")
        await page.get_by_role("link", name="Configuration").first.click()
        await effective(page, "LOG_LEVEL", "debug", "group oslo, version 2")
        await effective(page, "RETRIES", "3", "group oslo, version 2")
        await expect(page.locator("[data-config-state]")).to_have_text("Pending")
        await report_applied(device_api, credential)
        await page.reload()
        await expect(page.locator("[data-config-state]")).to_have_text("Applied")

        secrets = page.locator("#secret-form")
        await secrets.get_by_label("Secret key").fill("DB_PASSWORD")
        await secrets.get_by_label("Secret value").fill(SECRET)
        await secrets.get_by_role("button", name="Set secret").click()
        await expect(page.locator(".flash")).to_have_text("Secret set: this is now version 1.")
        await expect(page.locator('#config-secrets [data-secret="DB_PASSWORD"]')).to_contain_text(
            "set"
        )
        await effective(page, "DB_PASSWORD", "secret, set", "device pi-07, version 1")
        assert SECRET not in await page.content(), "a secret is never shown back"
        await snap(page, screenshots, "51-device-config")

        await page.get_by_role("link", name="group oslo, version 2").first.click()
        await page.get_by_role("button", name="Roll back to version 1").click()
        await expect(page.locator(".flash")).to_contain_text("Rolled back: version 3")
        await expect(page.locator("#config-history tr[data-version]").first).to_contain_text(
            "rollback to version 1"
        )
        await page.goto(server.url + "/devices/pi-07/config")
        await effective(page, "LOG_LEVEL", "info", "group oslo, version 3")
    shown = (await api.get("/api/v1/devices/pi-07/config")).json()
    assert {i["key"]: i["origin"] for i in shown["items"]} == {
        "DB_PASSWORD": "device pi-07, version 1",
        "LOG_LEVEL": "group oslo, version 3",
    }


async def test_tenant_defaults_are_edited_from_the_side_bar_under_the_groups(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    await oslo(api, device_api)
    async with chromium() as browser, signed_in(browser, server.url) as page:
        await page.goto(server.url + "/")
        await page.get_by_role("link", name="Config defaults").click()
        await expect(page.locator("h1")).to_have_text("Config defaults")
        editor = page.get_by_label("Values (YAML)")
        await editor.fill("TZ: UTC\nLOG_LEVEL: warning\n")
        await page.get_by_role("button", name="Preview").click()
        await expect(page.locator("#config-preview")).to_contain_text(
            "Preview: version 1, reaching 1 device"
        )
        await page.get_by_role("button", name="Apply").click()
        await expect(page.locator(".flash")).to_have_text("Applied: this is now version 1.")
        # The same text again changes nothing: no version to apply.
        await page.get_by_label("Values (YAML)").fill("LOG_LEVEL: warning\nTZ: UTC\n")
        await page.get_by_role("button", name="Preview").click()
        await expect(page.locator("#config-preview")).to_contain_text("No change")
        await expect(page.get_by_role("button", name="Apply")).to_have_count(0)
        await snap(page, screenshots, "53-tenant-config")
        await page.goto(server.url + "/devices/pi-07/config")
        await effective(page, "TZ", "UTC", "tenant, version 1")
        await effective(page, "LOG_LEVEL", "info", "group oslo, version 1")
    layer = (await api.get("/api/v1/config/tenant")).json()
    assert (layer["version"], layer["values"]) == (1, {"LOG_LEVEL": "warning", "TZ": "UTC"})


async def test_a_viewer_sees_config_but_no_write_controls_and_is_refused(
    server: LiveServer, api: httpx.AsyncClient, device_api: httpx.AsyncClient, screenshots: Path
) -> None:
    await oslo(api, device_api)
    await api.patch("/api/v1/config/devices/pi-07", json={"secrets": {"TOKEN": SECRET}})
    body = {"username": "vera", "role": "viewer", "password": "viewer password 1"}
    assert (await api.post("/api/v1/users", json=body)).status_code == 201
    viewer = ("vera", "viewer password 1")
    async with chromium() as browser, signed_in(browser, server.url, *viewer) as page:
        for path in ("/config", "/groups/oslo/config", "/devices/pi-07/config"):
            await page.goto(server.url + path)
            if path == "/config":
                await expect(page.locator("#layer-version")).to_have_text("Nothing set here yet.")
                assert await page.locator("textarea").count() == 0
                continue
            await expect(page.locator("#config-history tr[data-version]")).to_have_count(1)
            assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
            assert await page.locator("textarea, input[type=password]").count() == 0
        await expect(page.locator('[data-secret="TOKEN"]')).to_contain_text("set")
        assert SECRET not in await page.content()
        await page.goto(server.url + "/groups/oslo/config")
        await expect(page.locator("#layer-values")).to_have_text("LOG_LEVEL: info")
        await snap(page, screenshots, "52-viewer-config")
        await refused(page, server.url)
    layer = (await api.get(GROUP)).json()
    assert (layer["version"], layer["values"]) == (1, {"LOG_LEVEL": "info"})
    assert (await api.get("/api/v1/config/devices/pi-07")).json()["version"] == 1


async def refused(page: Page, url: str) -> None:
    """Every write the editor offers, posted by the viewer with a valid CSRF token: 403."""
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    fields = {"document": "LOG_LEVEL: error\n", "key": "TOKEN", "value": "x", "to": "1"}
    for base in ("/groups/oslo/config", "/devices/pi-07/config", "/config"):
        for action, suffix in (("preview", ""), ("apply", ""), ("", "/secrets"), ("", "/rollback")):
            path = base + suffix
            answer = await page.request.post(
                url + path, form={"csrf": csrf, "action": action, **fields}
            )
            assert answer.status == 403, path
            assert "you are viewer" in await answer.text(), path
        answer = await page.request.post(
            url + base + "/secrets/remove", form={"csrf": csrf, **fields}
        )
        assert answer.status == 403
