"""Two tenants, one artifact store: neither sees, uses, removes nor downloads the other's uploads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants
from tests.helpers import new_device

THEIRS = b"acme's secret firmware" * 100
SHARED = b"the same public tarball" * 100


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass
class Other:
    """The second tenant's admin client and the credential of one of its devices."""

    client: httpx.AsyncClient
    credential: str


@pytest.fixture
async def other(app: FastAPI, runtime: Runtime, anon: httpx.AsyncClient) -> AsyncIterator[Other]:
    created = await tenants.create(runtime, "acme", "Acme", "boss")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {created.admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        for name, content in (("firmware", THEIRS), ("tarball", SHARED)):
            assert (await c.put(f"/api/v1/artifacts/{name}", content=content)).status_code == 201
        yield Other(c, await new_device(c, anon, "acme-pi"))


async def test_uploads_of_another_tenant_are_invisible(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    assert (await client.get("/api/v1/artifacts")).json() == []
    assert (await client.delete("/api/v1/artifacts/firmware")).status_code == 404
    assert (await client.delete(f"/api/v1/artifacts/{sha(THEIRS)}")).status_code == 404
    for artifact in ({"name": "firmware"}, {"sha256": sha(THEIRS)}):
        bundle = {
            "name": "steal",
            "version": "1.0.0",
            "apps": [{"name": "x", "artifact": artifact, "command": ["./x"]}],
        }
        refused = await client.post("/api/v1/bundles", json=bundle)
        assert refused.status_code == 422, refused.text
        assert "upload it with signalbeam artifacts push" in refused.json()["detail"]

    mine = await new_device(client, anon, "my-pi")
    denied = await anon.get(
        f"/api/device/v1/artifacts/{sha(THEIRS)}", headers={"Authorization": f"Bearer {mine}"}
    )
    assert denied.status_code == 404
    assert sha(THEIRS) in denied.json()["detail"] and "acme" not in denied.json()["detail"]
    theirs = await anon.get(
        f"/api/device/v1/artifacts/{sha(THEIRS)}",
        headers={"Authorization": f"Bearer {other.credential}"},
    )
    assert theirs.status_code == 200 and theirs.content == THEIRS


async def test_same_bytes_in_two_tenants_survive_one_removal(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    assert (await client.put("/api/v1/artifacts/mine", content=SHARED)).status_code == 201
    assert (await client.delete("/api/v1/artifacts/mine")).status_code == 200
    theirs = await anon.get(
        f"/api/device/v1/artifacts/{sha(SHARED)}",
        headers={"Authorization": f"Bearer {other.credential}"},
    )
    assert theirs.status_code == 200 and theirs.content == SHARED
    assert [a["name"] for a in (await other.client.get("/api/v1/artifacts")).json()] == [
        "firmware",
        "tarball",
    ]
