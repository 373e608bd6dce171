"""Users and roles: who may do what, passwords and tokens hashed, every change attributed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from signalbeam.server.db.models import ApiToken, Device, EnrollmentToken, User
from signalbeam.server.runtime import Runtime
from tests.helpers import enroll, enrollment_token, new_device

PASSWORD = "correct horse battery"


async def login(anon: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await anon.post("/api/v1/auth/login", json={"username": username, "password": password})


@pytest.fixture
async def as_role(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {}
    transport = httpx.ASGITransport(app=app)
    for role in ("operator", "viewer"):
        created = await client.post(
            "/api/v1/users", json={"username": role, "role": role, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        token = (await login(anon, role)).json()["token"]
        clients[role] = httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": f"Bearer {token}"},
        )
    yield clients
    for c in clients.values():
        await c.aclose()


async def test_viewer_reads_but_cannot_change_anything(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, as_role: dict[str, httpx.AsyncClient]
) -> None:
    await new_device(client, anon, "pi")
    await client.post("/api/v1/groups", json={"name": "static"})
    viewer = as_role["viewer"]
    assert (await viewer.get("/api/v1/devices")).json()["total"] == 1
    assert (await viewer.get("/api/v1/devices/pi")).status_code == 200
    attempts = [
        viewer.post("/api/v1/enrollment-tokens", json={}),
        viewer.patch("/api/v1/devices/pi/labels", json={"set": {"a": "b"}}),
        viewer.delete("/api/v1/devices/pi"),
        viewer.post("/api/v1/groups", json={"name": "g"}),
        viewer.post("/api/v1/groups/static/members", json={"devices": ["pi"]}),
        viewer.delete("/api/v1/groups/static"),
        viewer.post("/api/v1/users", json={"username": "x", "role": "admin"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert "role" in response.json()["detail"]
    assert (await client.get("/api/v1/devices/pi")).json()["labels"] == {}


async def test_operator_manages_devices_not_users(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, as_role: dict[str, httpx.AsyncClient]
) -> None:
    operator = as_role["operator"]
    token = await enrollment_token(operator, labels={"by": "op"})
    await enroll(anon, token, "op-pi")
    changed = await operator.patch("/api/v1/devices/op-pi/labels", json={"set": {"site": "oslo"}})
    assert changed.status_code == 200
    refused = await operator.post("/api/v1/users", json={"username": "sneaky", "role": "admin"})
    assert refused.status_code == 403 and "admin role" in refused.json()["detail"]
    events = (await client.get("/api/v1/events")).json()["items"]
    by_operator = {e["type"] for e in events if e["actor"] == "user:operator"}
    assert {"enrollment_token.created", "device.labels_changed"} <= by_operator
    tokens = (await client.get("/api/v1/enrollment-tokens")).json()
    assert tokens[0]["created_by"] == "user:operator"


async def test_login_failures_and_token_lifecycle(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, as_role: dict[str, httpx.AsyncClient]
) -> None:
    for response in (await login(anon, "viewer", "wrong password!"), await login(anon, "ghost")):
        assert response.status_code == 401
        assert response.json()["detail"] == "wrong tenant, username or password"
    short = await client.post("/api/v1/users", json={"username": "weak", "password": "short"})
    assert short.status_code == 422 and short.json()["field"] == "password"

    viewer = as_role["viewer"]
    created = (await viewer.post("/api/v1/api-tokens", json={"name": "script"})).json()
    scripted = httpx.AsyncClient(
        transport=viewer._transport,
        base_url="http://test",
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    async with scripted:
        assert (await scripted.get("/api/v1/me")).json()["username"] == "viewer"
        assert (await viewer.delete(f"/api/v1/api-tokens/{created['id']}")).status_code == 204
        revoked = await scripted.get("/api/v1/me")
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


async def test_secrets_are_hashed_at_rest(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    runtime: Runtime,
    admin_token: str,
    as_role: dict[str, httpx.AsyncClient],
) -> None:
    token = await enrollment_token(client)
    credential = await enroll(anon, token, "pi")
    async with runtime.sessions() as session:
        users = list(await session.scalars(select(User)))
        stored = [t.token_hash for t in await session.scalars(select(ApiToken))]
        stored += [t.token_hash for t in await session.scalars(select(EnrollmentToken))]
        stored += [d.credential_hash or "" for d in await session.scalars(select(Device))]
    assert all(u.password_hash is None or u.password_hash.startswith("$argon2id$") for u in users)
    assert sum(1 for u in users if u.password_hash) == 2
    for secret in (admin_token, token, credential):
        assert secret not in stored
        assert runtime.hasher.hash(secret) in stored
