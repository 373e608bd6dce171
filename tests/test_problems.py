"""Every error is RFC 9457 problem+json that names the field and says what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from signalbeam.server.db.models import EnrollmentToken
from signalbeam.server.runtime import Runtime
from tests.helpers import enroll, enrollment_token


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    assert "Traceback" not in response.text
    if field is not None:
        assert body.get("field") == field, body
    return body


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/groups", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400, "body")
    assert "not valid JSON" in str(body["detail"])


async def test_wrong_type_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/enrollment-tokens", json={"max_uses": "many"})
    body = assert_problem(response, 422, "max_uses")
    assert "max_uses:" in str(body["detail"])


async def test_unknown_field_is_an_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/groups", json={"name": "g", "selectr": "env=prod"})
    body = assert_problem(response, 422, "selectr")
    assert "unknown field" in str(body["detail"])


async def test_nested_field_path(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    token = await enrollment_token(client)
    body = {"token": token, "device_id": "pi", "facts": {"hostname": 7}}
    assert_problem(await anon.post("/api/device/v1/enroll", json=body), 422, "facts.hostname")


async def test_oversized_body_declared(client: httpx.AsyncClient, runtime: Runtime) -> None:
    big = b"x" * (runtime.settings.max_body_bytes + 1)
    response = await client.post(
        "/api/v1/groups", content=big, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 413, "body")
    assert str(runtime.settings.max_body_bytes) in str(body["detail"])


async def test_oversized_body_streamed_without_length(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    chunk = b" " * 65536

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(runtime.settings.max_body_bytes // len(chunk) + 2):
            yield chunk

    response = await client.post(
        "/api/v1/groups", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "body")


async def test_bad_selector(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/devices", params={"selector": "env=prod,site in (oslo"})
    body = assert_problem(response, 422, "selector")
    assert 'missing ")"' in str(body["detail"])


async def test_bad_query_values(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/devices", params={"limit": 0}), 422, "limit")
    assert_problem(await client.get("/api/v1/devices", params={"status": "sleepy"}), 422, "status")
    assert_problem(await client.get("/api/v1/devices", params={"sort": "colour"}), 422, "sort")
    assert_problem(
        await client.get("/api/v1/events", params={"type": "device.exploded"}), 422, "type"
    )


async def test_unknown_ids(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/devices/nope"), 404, "device_id")
    assert_problem(await client.get("/api/v1/groups/nope"), 404, "group")
    assert_problem(await client.delete("/api/v1/enrollment-tokens/999"), 404, "token_id")
    body = assert_problem(await client.get("/api/v1/nothing-here"), 404)
    assert "/api/openapi.json" in str(body["detail"])


async def test_authentication_problems(anon: httpx.AsyncClient) -> None:
    missing = await anon.get("/api/v1/devices")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await anon.get("/api/v1/devices", headers={"Authorization": "Bearer sbu_wrong"})
    assert "signalbeam login" in str(assert_problem(wrong, 401)["detail"])
    device = await anon.post("/api/device/v1/sync", json={}, headers={"Authorization": "Bearer x"})
    assert "register" in str(assert_problem(device, 401)["detail"])


async def test_enrollment_token_refusals(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    unknown = await anon.post(
        "/api/device/v1/enroll", json={"token": "sbe_nope", "device_id": "d1"}
    )
    assert "tokens create" in str(assert_problem(unknown, 401)["detail"])

    once = await enrollment_token(client, max_uses=1)
    await enroll(anon, once, "d1")
    used_up = await anon.post("/api/device/v1/enroll", json={"token": once, "device_id": "d2"})
    assert "used up" in str(assert_problem(used_up, 403)["detail"])

    expiring = await enrollment_token(client)
    async with runtime.sessions() as session:
        await session.execute(
            update(EnrollmentToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    expired = await anon.post("/api/device/v1/enroll", json={"token": expiring, "device_id": "d3"})
    assert "expired" in str(assert_problem(expired, 403)["detail"])

    revoked = await enrollment_token(client, expires_in=None)
    tokens = (await client.get("/api/v1/enrollment-tokens")).json()
    newest = max(t["id"] for t in tokens)
    assert (await client.delete(f"/api/v1/enrollment-tokens/{newest}")).json()["revoked"] is True
    refused = await anon.post("/api/device/v1/enroll", json={"token": revoked, "device_id": "d4"})
    assert "revoked" in str(assert_problem(refused, 403)["detail"])


async def test_bad_durations_and_labels(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/enrollment-tokens", json={"expires_in": "soon"})
    assert "24h" in str(assert_problem(response, 422, "expires_in")["detail"])
    response = await client.post("/api/v1/enrollment-tokens", json={"labels": {"bad key!": "x"}})
    assert_problem(response, 422, "labels")


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    # An endpoint that breaks, standing in for any bug: the client must not see a traceback.
    async def broken() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/api/v1/test-broken", broken)
    return app


async def test_internal_error_hides_the_traceback(failing_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.get("/api/v1/test-broken")
    body = assert_problem(response, 500)
    assert "secret internal detail" not in response.text
    assert "reference" in str(body["detail"])


async def test_stream_filters_are_checked_like_the_list(client: httpx.AsyncClient) -> None:
    bad_type = await client.get("/api/v1/events/stream", params={"type": "device.exploded"})
    assert_problem(bad_type, 422, "type")
    bad_device = await client.get("/api/v1/events/stream", params={"device": "ghost"})
    assert_problem(bad_device, 404, "device")


async def test_sync_refusals_are_problems(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Device syncs are served beside the framework; their errors must read the same."""
    credential = await enroll(anon, await enrollment_token(client), "pi-refusals")
    auth = {"Authorization": f"Bearer {credential}", "content-type": "application/json"}
    url = "/api/device/v1/sync"

    missing = await anon.post(url, json={})
    assert "Authorization: Bearer" in str(assert_problem(missing, 401)["detail"])
    assert missing.headers["www-authenticate"] == "Bearer"

    broken = await anon.post(url, content=b'{"heartbeat": {', headers=auth)
    assert "not valid JSON" in str(assert_problem(broken, 400, "body")["detail"])

    typo = await anon.post(url, json={"heartbeet": {}}, headers=auth)
    assert "unknown field" in str(assert_problem(typo, 422, "heartbeet")["detail"])

    nested = await anon.post(url, json={"heartbeat": {"cpu_percent": 250}}, headers=auth)
    assert_problem(nested, 422, "heartbeat.cpu_percent")

    empty = await anon.post(url, content=b"", headers=auth)
    assert_problem(empty, 422, "body")

    big = b"x" * (runtime.settings.max_body_bytes + 1)
    declared = await anon.post(url, content=big, headers=auth)
    assert str(runtime.settings.max_body_bytes) in str(
        assert_problem(declared, 413, "body")["detail"]
    )

    chunk = b" " * 65536

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(runtime.settings.max_body_bytes // len(chunk) + 2):
            yield chunk

    assert_problem(await anon.post(url, content=chunks(), headers=auth), 413, "body")

    # None of the refusals counted as a sync: the device has never been seen.
    device = (await client.get("/api/v1/devices/pi-refusals")).json()
    assert device["last_seen_at"] is None
    ok = await anon.post(url, json={"known_generation": 0}, headers=auth)
    assert ok.status_code == 200 and ok.json()["status"] in ("changed", "unchanged")
