"""The session cookie and forms without a browser: signing, CSRF, redirects, revocation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.server.web.session import COOKIE
from tests.helpers import new_device


@pytest.fixture
async def browser_like(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client that does not follow redirects, like a form-posting browser."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, token: str, next_path: str = "/") -> httpx.Response:
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return await client.post(
        "/login", data={"csrf": csrf.group(1), "token": token, "next": next_path}
    )


async def test_pages_need_a_session_and_htmx_gets_a_full_page_redirect(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await browser_like.get("/devices/pi-1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/devices/pi-1"
    fragment = await browser_like.get("/fleet/table", headers={"HX-Request": "true"})
    assert fragment.status_code == 204
    assert fragment.headers["HX-Redirect"].startswith("/login")


async def test_a_tampered_cookie_is_ignored(
    browser_like: httpx.AsyncClient, admin_token: str
) -> None:
    assert (await sign_in(browser_like, admin_token)).status_code == 303
    value = browser_like.cookies[COOKIE]
    body, _, signature = value.rpartition(".")
    browser_like.cookies.set(COOKIE, body + "." + signature[::-1])
    response = await browser_like.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_sign_in_never_redirects_off_site(
    browser_like: httpx.AsyncClient, admin_token: str
) -> None:
    for target in ("//evil.example", "/\\evil.example", "https://evil.example"):
        response = await sign_in(browser_like, admin_token, target)
        assert response.headers["location"] == "/"


async def test_sign_in_form_needs_its_own_csrf_cookie(
    browser_like: httpx.AsyncClient, admin_token: str
) -> None:
    response = await browser_like.post("/login", data={"csrf": "made-up", "token": admin_token})
    assert response.status_code == 400
    assert "expired" in response.text
    assert COOKIE not in browser_like.cookies


async def test_signing_out_revokes_the_session_token(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    response = await client.put("/api/v1/users/admin/password", json={"password": "a password!"})
    assert response.status_code == 204
    page = await browser_like.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": "admin", "password": "a password!"}
    assert (await browser_like.post("/login", data=form)).status_code == 303
    stolen = browser_like.cookies[COOKIE]

    fleet = await browser_like.get("/")
    session_csrf = re.search(r'name="csrf-token" content="([^"]+)"', fleet.text)
    assert session_csrf is not None
    response = await browser_like.post("/logout", data={"csrf": session_csrf.group(1)})
    assert response.status_code == 303

    # The cookie is gone from the browser, and a copy of it no longer works either.
    browser_like.cookies.set(COOKIE, stolen)
    assert (await browser_like.get("/")).status_code == 303
    tokens = (await client.get("/api/v1/api-tokens")).json()
    assert [t["revoked"] for t in tokens if t["name"] == "dashboard session"] == [True]


async def test_a_bad_address_is_a_page_not_json(
    browser_like: httpx.AsyncClient, admin_token: str
) -> None:
    await sign_in(browser_like, admin_token)
    response = await browser_like.get("/?page=abc")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "this address is not valid (page:" in response.text


async def test_the_services_still_refuse_a_viewer_who_posts_anyway(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1")
    body = {"username": "vic", "role": "viewer", "password": "viewer password"}
    assert (await client.post("/api/v1/users", json=body)).status_code == 201
    page = await browser_like.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "username": "vic", "password": "viewer password"}
    assert (await browser_like.post("/login", data=form)).status_code == 303
    fleet = await browser_like.get("/")
    session_csrf = re.search(r'name="csrf-token" content="([^"]+)"', fleet.text)
    assert session_csrf is not None

    change = {"csrf": session_csrf.group(1), "key": "site", "value": "oslo"}
    response = await browser_like.post("/devices/pi-1/labels", data=change)
    assert response.status_code == 403
    assert "this needs the operator role; you are viewer" in response.text
    assert (await client.get("/api/v1/devices/pi-1")).json()["labels"] == {}
