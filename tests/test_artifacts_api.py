"""Artifacts through the real management and device APIs: upload, list, use in bundles, remove."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbeam.server.settings import ServerSettings
from tests.helpers import new_device

MAX_BODY = 1000
MAX_ARTIFACT = 100_000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ServerSettings:
    """Small limits, so the tests can pass both with little data."""
    return ServerSettings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        mdns=False,
        max_body_bytes=MAX_BODY,
        artifact_max_bytes=MAX_ARTIFACT,
    )


def data(size: int, seed: int = 0) -> bytes:
    """`size` deterministic bytes."""
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def blob_path(settings: ServerSettings, digest: str) -> Path:
    return settings.data_dir / "artifacts" / "sha256" / digest[:2] / digest


async def upload(
    client: httpx.AsyncClient, name: str, content: bytes, **headers: str
) -> httpx.Response:
    return await client.put(f"/api/v1/artifacts/{name}", content=content, headers=headers)


def app_bundle(version: str, artifact: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "relay",
        "version": version,
        "apps": [{"name": "relay", "artifact": artifact, "command": ["./relay"]}],
    }


async def test_upload_is_content_addressed_and_idempotent(
    client: httpx.AsyncClient, settings: ServerSettings
) -> None:
    # Larger than the API's body limit: uploads are exempt and streamed.
    content = data(50_000)
    first = await upload(client, "relay-1.0.tar.gz", content)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["name"], body["sha256"], body["size"], body["created"]) == (
        "relay-1.0.tar.gz",
        sha(content),
        50_000,
        True,
    )
    assert body["created_by"] == "user:admin"
    assert blob_path(settings, sha(content)).read_bytes() == content
    again = await upload(client, "relay-1.0.tar.gz", content)
    assert again.status_code == 200 and again.json()["created"] is False
    listed = (await client.get("/api/v1/artifacts")).json()
    assert [(a["name"], a["sha256"], a["size"], a["bundle_versions"]) for a in listed] == [
        ("relay-1.0.tar.gz", sha(content), 50_000, 0)
    ]
    events = (await client.get("/api/v1/events", params={"type": "artifact.pushed"})).json()
    assert [e["data"]["name"] for e in events["items"]] == ["relay-1.0.tar.gz"]


async def test_streamed_upload_without_length_is_stored(client: httpx.AsyncClient) -> None:
    content = data(70_000, seed=3)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    response = await client.put("/api/v1/artifacts/model.bin", content=chunks())
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == sha(content)


async def test_wrong_expected_digest_stores_nothing(
    client: httpx.AsyncClient, settings: ServerSettings
) -> None:
    content = data(5000)
    wrong = sha(b"something else")
    response = await upload(client, "relay", content, **{"X-Sha256": wrong})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "X-Sha256"
    assert problem["detail"] == (
        f"X-Sha256: the uploaded bytes hash to {sha(content)}, not {wrong}; the file changed "
        "or was damaged on the way, so nothing was stored: upload it again"
    )
    assert (await client.get("/api/v1/artifacts")).json() == []
    assert not blob_path(settings, sha(content)).exists()
    assert list((settings.data_dir / "artifacts" / "tmp").iterdir()) == []
    right = await upload(client, "relay", content, **{"X-Sha256": sha(content)})
    assert right.status_code == 201


async def test_too_large_and_bad_names_are_refused_with_the_fix(
    client: httpx.AsyncClient, settings: ServerSettings
) -> None:
    declared = await upload(client, "big", data(MAX_ARTIFACT + 1))
    assert declared.status_code == 413
    assert declared.json()["detail"].startswith(
        f"the artifact is larger than this server accepts ({MAX_ARTIFACT} bytes); raise "
        "SIGNALBEAM_ARTIFACT_MAX_BYTES"
    )

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield data(8192)

    streamed = await client.put("/api/v1/artifacts/big", content=endless())
    assert streamed.status_code == 413
    assert list((settings.data_dir / "artifacts" / "tmp").iterdir()) == []

    bad = await upload(client, "-relay", b"x")
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    assert "is not a valid artifact name" in bad.json()["detail"]
    digest_like = await upload(client, sha(b"x"), b"x")
    assert digest_like.status_code == 422
    assert "must not look like a sha256 digest" in digest_like.json()["detail"]
    assert (await client.get("/api/v1/artifacts")).json() == []


async def test_bundles_reference_uploads_by_name_or_digest(client: httpx.AsyncClient) -> None:
    old, new = data(3000, 1), data(3000, 2)
    await upload(client, "relay", old)
    await upload(client, "relay", new)  # the newest upload of a name is what {name} means

    by_name = await client.post("/api/v1/bundles", json=app_bundle("1.0.0", {"name": "relay"}))
    assert by_name.status_code == 201, by_name.text
    spec = (await client.get("/api/v1/bundles/relay/versions/1.0.0")).json()["spec"]
    assert spec["apps"][0]["artifact"] == {"name": "relay", "sha256": sha(new)}

    by_digest = await client.post("/api/v1/bundles", json=app_bundle("1.1.0", {"sha256": sha(old)}))
    assert by_digest.status_code == 201, by_digest.text
    spec = (await client.get("/api/v1/bundles/relay/versions/1.1.0")).json()["spec"]
    assert spec["apps"][0]["artifact"] == {"sha256": sha(old)}

    missing = await client.post("/api/v1/bundles", json=app_bundle("2.0.0", {"name": "nope"}))
    assert missing.status_code == 422
    assert missing.json()["field"] == "apps[0].artifact.name"
    assert missing.json()["detail"] == (
        "apps[0].artifact.name: no artifact named nope; upload it with signalbeam artifacts push"
    )
    unknown = sha(b"never uploaded")
    stray = await client.post("/api/v1/bundles", json=app_bundle("2.0.0", {"sha256": unknown}))
    assert stray.status_code == 422
    assert stray.json()["detail"] == (
        f"apps[0].artifact.sha256: no artifact with sha256 {unknown}; "
        "upload it with signalbeam artifacts push"
    )

    listed = {a["sha256"]: a for a in (await client.get("/api/v1/artifacts")).json()}
    assert listed[sha(new)]["used_by"] == ["relay@1.0.0"]
    assert listed[sha(old)]["bundle_versions"] == 1


async def test_remove_is_refused_while_a_bundle_version_uses_it(
    client: httpx.AsyncClient, settings: ServerSettings
) -> None:
    used, unused = data(2000, 1), data(2000, 2)
    await upload(client, "relay", used)
    await upload(client, "spare", unused)
    pushed = await client.post("/api/v1/bundles", json=app_bundle("1.0.0", {"name": "relay"}))
    assert pushed.status_code == 201, pushed.text

    for ref in ("relay", sha(used)):
        refused = await client.delete(f"/api/v1/artifacts/{ref}")
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"artifact {ref} is used by bundle version relay@1.0.0; devices may need it to "
            "install or roll back to them, so it stays while they exist"
        )
    assert blob_path(settings, sha(used)).exists()

    removed = await client.delete(f"/api/v1/artifacts/{sha(unused)}")
    assert removed.status_code == 200, removed.text
    assert [a["name"] for a in removed.json()["removed"]] == ["spare"]
    assert not blob_path(settings, sha(unused)).exists()
    assert [a["name"] for a in (await client.get("/api/v1/artifacts")).json()] == ["relay"]
    gone = await client.delete("/api/v1/artifacts/spare")
    assert gone.status_code == 404
    assert gone.json()["detail"] == (
        "no artifact spare in this tenant; list them with `signalbeam artifacts ls`"
    )


async def test_removing_one_name_keeps_bytes_another_name_holds(
    client: httpx.AsyncClient, settings: ServerSettings
) -> None:
    content = data(1000)
    await upload(client, "a", content)
    await upload(client, "b", content)
    assert (await client.delete("/api/v1/artifacts/a")).status_code == 200
    assert blob_path(settings, sha(content)).read_bytes() == content
    assert (await client.delete("/api/v1/artifacts/b")).status_code == 200
    assert not blob_path(settings, sha(content)).exists()


async def test_device_download_with_ranges(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    content = data(10_000)
    digest = sha(content)
    await upload(client, "relay", content)
    credential = await new_device(client, anon, "pi-1")
    auth = {"Authorization": f"Bearer {credential}"}
    url = f"/api/device/v1/artifacts/{digest}"

    whole = await anon.get(url, headers=auth)
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["etag"] == f'"{digest}"' and whole.headers["accept-ranges"] == "bytes"

    tail = await anon.get(url, headers={**auth, "Range": "bytes=9000-"})
    assert tail.status_code == 206 and tail.content == content[9000:]
    assert tail.headers["content-range"] == "bytes 9000-9999/10000"
    middle = await anon.get(url, headers={**auth, "Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == content[10:20]
    suffix = await anon.get(url, headers={**auth, "Range": "bytes=-5"})
    assert suffix.content == content[-5:]
    stale = await anon.get(url, headers={**auth, "Range": "bytes=10-19", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == content

    beyond = await anon.get(url, headers={**auth, "Range": "bytes=10000-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */10000"
    assert beyond.json()["detail"] == (
        "Range starts at byte 10000 but the artifact has 10000 bytes; "
        "download it again from the start"
    )
    garbled = await anon.get(url, headers={**auth, "Range": "lines=1-2"})
    assert garbled.status_code == 416 and garbled.json()["field"] == "Range"

    assert (await anon.get(url)).status_code == 401
    unknown = await anon.get(f"/api/device/v1/artifacts/{sha(b'x')}", headers=auth)
    assert unknown.status_code == 404


async def test_racing_push_and_remove_never_leave_a_bundle_without_its_artifact(
    client: httpx.AsyncClient,
) -> None:
    for round_ in range(4):
        name = f"racy-{round_}"
        await upload(client, name, data(500, seed=round_))
        pushed, removed = await asyncio.gather(
            client.post("/api/v1/bundles", json=app_bundle(f"1.0.{round_}", {"name": name})),
            client.delete(f"/api/v1/artifacts/{name}"),
        )
        outcome = (pushed.status_code, removed.status_code)
        # Exactly one wins: the version is stored and the artifact stays, or it is gone first.
        assert outcome in ((201, 409), (422, 200), (409, 200)), (pushed.text, removed.text)
        listed = [a["name"] for a in (await client.get("/api/v1/artifacts")).json()]
        assert (name in listed) == (pushed.status_code == 201)
