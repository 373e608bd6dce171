"""Bundles through the real management API: push, validate, list, diff, assign, and report back."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
from fastapi import FastAPI

from signalbeam.protocol.bundle_v1 import parse_bundle
from tests.helpers import new_device, sync

IMAGE = "127.0.0.1:5000/warehouse-monitor"
BUNDLE: dict[str, Any] = {
    "name": "warehouse-monitor",
    "version": "1.2.0",
    "description": "temperature and door sensors",
    "containers": [
        {
            "name": "monitor",
            "image": f"{IMAGE}:1.2.0",
            "env": {"LOG_LEVEL": "info"},
            "ports": ["8080:8080"],
            "health": {"http": "http://127.0.0.1:8080/health", "timeout": "60s"},
        }
    ],
}
YAML_BUNDLE = """\
name: door-sensor
version: 0.3.0
apps:
  - name: reader
    artifact:
      url: http://127.0.0.1:9000/reader.tar.gz
      sha256: 9f2c3a0e1b4d5c6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e41
    command: [./reader, --port, "9100"]
"""
YAML = {"Content-Type": "application/yaml"}


def version_of(version: str, image_tag: str | None = None, **container: Any) -> dict[str, Any]:
    """The example bundle at another version (and, optionally, another image or settings)."""
    document = copy.deepcopy(BUNDLE)
    document["version"] = version
    document["containers"][0]["image"] = f"{IMAGE}:{image_tag or version}"
    document["containers"][0].update(container)
    return document


async def push(client: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/bundles", json=document)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def assign(client: httpx.AsyncClient, ref: str, **target: Any) -> httpx.Response:
    name, version = ref.split("@")
    return await client.post(f"/api/v1/bundles/{name}/versions/{version}/assign", json=target)


async def test_push_is_immutable_and_idempotent(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/v1/bundles", json=BUNDLE)
    assert first.status_code == 201, first.text
    pushed = first.json()
    assert pushed["created"] is True and pushed["created_by"] == "user:admin"
    assert pushed["digest"] == parse_bundle(BUNDLE).digest()

    # The same content written differently (keys reordered, defaults spelled out) is the same.
    same = {
        **BUNDLE,
        "apps": [],
        "containers": [{**BUNDLE["containers"][0], "restart": "unless-stopped"}],
    }
    again = await client.post("/api/v1/bundles", json=dict(reversed(list(same.items()))))
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False and again.json()["digest"] == pushed["digest"]

    changed = await client.post("/api/v1/bundles", json=version_of("1.2.0", image_tag="1.2.1"))
    assert changed.status_code == 409
    assert changed.headers["content-type"] == "application/problem+json"
    assert changed.json()["detail"] == (
        "bundle versions are immutable: warehouse-monitor@1.2.0 already exists with a "
        "different digest; push it as a new version"
    )
    shown = (await client.get("/api/v1/bundles/warehouse-monitor/versions/1.2.0")).json()
    assert shown["digest"] == pushed["digest"] and shown["spec"]["containers"][0]["image"].endswith(
        ":1.2.0"
    )
    events = (await client.get("/api/v1/events", params={"type": "bundle.pushed"})).json()["items"]
    assert [(e["actor"], e["data"]["version"]) for e in events] == [("user:admin", "1.2.0")]
    assert events[0]["message"].startswith("bundle warehouse-monitor@1.2.0 pushed (sha256:")


async def test_concurrent_pushes_of_one_version_store_it_once(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(client.post("/api/v1/bundles", json=version_of(v)) for v in ("1.0.0", "1.0.0", "1.1.0"))
    )
    assert sorted(a.status_code for a in answers) == [200, 201, 201], [a.text for a in answers]
    assert [a.json()["created"] for a in answers[:2]].count(True) == 1
    shown = (await client.get("/api/v1/bundles/warehouse-monitor")).json()
    assert [v["version"] for v in shown["versions"]] == ["1.1.0", "1.0.0"]


async def test_every_validation_error_is_listed_with_its_path(client: httpx.AsyncClient) -> None:
    bad = {
        "name": "Warehouse Monitor",
        "version": "1.2",
        "containers": [{"name": "monitor", "imagee": "x"}],
    }
    response = await client.post("/api/v1/bundles", json=bad)
    assert response.status_code == 422
    problem = response.json()
    detail = problem["detail"]
    assert problem["field"] == "name"
    for expected in (
        "name: 'Warehouse Monitor' is not valid here",
        "version: '1.2' is not valid here (a semantic version like 1.2.0)",
        "containers[0].image: required",
        "containers[0].imagee: unknown key",
    ):
        assert expected in detail, detail
    assert (await client.get("/api/v1/bundles")).json() == []

    not_a_mapping = await client.post("/api/v1/bundles", json=["name", "version"])
    assert not_a_mapping.status_code == 422 and not_a_mapping.json()["field"] == "bundle"


async def test_yaml_bodies_are_accepted_and_syntax_errors_name_the_line(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/v1/bundles", content=YAML_BUNDLE, headers=YAML)
    assert created.status_code == 201, created.text
    assert (created.json()["name"], created.json()["version"]) == ("door-sensor", "0.3.0")

    broken = YAML_BUNDLE.replace("    command: [./reader", "    command: [./reader:\n  - ")
    syntax = await client.post("/api/v1/bundles", content=broken, headers=YAML)
    assert syntax.status_code == 400
    assert syntax.headers["content-type"] == "application/problem+json"
    assert "YAML syntax error at line 9" in syntax.json()["detail"], syntax.text

    typo = YAML_BUNDLE.replace("    command:", "    comand:")
    invalid = await client.post("/api/v1/bundles", content=typo, headers=YAML)
    assert invalid.status_code == 422
    assert "apps[0].command: required" in invalid.json()["detail"]
    assert "apps[0].comand: unknown key" in invalid.json()["detail"]

    malformed = await client.post(
        "/api/v1/bundles", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and "line 1" in malformed.json()["detail"]
    plain = await client.post(
        "/api/v1/bundles", content=YAML_BUNDLE, headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 415 and "application/yaml" in plain.json()["detail"]


async def test_latest_is_the_highest_semver_and_versions_list_newest_first(
    client: httpx.AsyncClient,
) -> None:
    for version in ("1.9.0", "1.10.0", "1.10.0-rc.1", "1.2.0"):
        await push(client, version_of(version))
    other = YAML_BUNDLE.replace("name: door-sensor", "name: aaa")
    assert (await client.post("/api/v1/bundles", content=other, headers=YAML)).status_code == 201

    listed = (await client.get("/api/v1/bundles")).json()
    assert [(b["name"], b["latest_version"], b["version_count"]) for b in listed] == [
        ("aaa", "0.3.0", 1),
        ("warehouse-monitor", "1.10.0", 4),
    ]
    shown = (await client.get("/api/v1/bundles/warehouse-monitor")).json()
    assert [v["version"] for v in shown["versions"]] == ["1.10.0", "1.10.0-rc.1", "1.9.0", "1.2.0"]
    latest = (await client.get("/api/v1/bundles/warehouse-monitor/versions/latest")).json()
    assert latest["version"] == "1.10.0"
    assert latest["spec"]["containers"][0]["image"] == f"{IMAGE}:1.10.0"
    assert latest["spec"]["containers"][0]["restart"] == "unless-stopped"  # canonical: defaults

    missing = await client.get("/api/v1/bundles/warehouse-monitor/versions/2.0.0")
    assert missing.status_code == 404
    assert "1.10.0, 1.10.0-rc.1, 1.9.0, 1.2.0" in missing.json()["detail"]
    assert (await client.get("/api/v1/bundles/nope")).status_code == 404
    assert (await client.get("/api/v1/bundles/nope/versions/latest")).status_code == 404


async def test_diff_shows_yaml_lines_and_changed_paths(client: httpx.AsyncClient) -> None:
    await push(client, BUNDLE)
    await push(client, version_of("1.3.0", env={"LOG_LEVEL": "debug"}))
    response = await client.get(
        "/api/v1/bundles/warehouse-monitor/diff", params={"from": "1.2.0", "to": "latest"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["from_version"], result["to_version"]) == ("1.2.0", "1.3.0")
    assert result["changed_paths"] == [
        "containers[0].env.LOG_LEVEL",
        "containers[0].image",
        "version",
    ]
    lines = result["diff"].splitlines()
    assert lines[:2] == ["--- warehouse-monitor@1.2.0", "+++ warehouse-monitor@1.3.0"]
    assert "-    LOG_LEVEL: info" in lines and "+    LOG_LEVEL: debug" in lines
    assert f"-  image: {IMAGE}:1.2.0" in lines and f"+  image: {IMAGE}:1.3.0" in lines
    assert "-version: 1.2.0" in lines and "+version: 1.3.0" in lines
    unknown = await client.get(
        "/api/v1/bundles/warehouse-monitor/diff", params={"from": "1.2.0", "to": "9.0.0"}
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "version"


async def _generations(client: httpx.AsyncClient) -> dict[str, int]:
    items = (await client.get("/api/v1/devices")).json()["items"]
    return {d["device_id"]: d["desired_generation"] for d in items}


async def test_assign_by_devices_group_and_selector_reaches_the_device(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-oslo", {"site": "oslo", "env": "prod"})
    await new_device(client, anon, "pi-bergen", {"site": "bergen", "env": "prod"})
    await new_device(client, anon, "pi-lab", {"site": "oslo", "env": "dev"})
    await client.post("/api/v1/groups", json={"name": "oslo", "selector": "site=oslo"})
    pushed = await push(client, BUNDLE)

    by_device = await assign(client, "warehouse-monitor@1.2.0", devices=["pi-oslo"])
    assert by_device.status_code == 200, by_device.text
    assert by_device.json()["devices"] == [{"device_id": "pi-oslo", "generation": 1}]
    by_group = await assign(client, "warehouse-monitor@1.2.0", group="oslo")
    assert by_group.json()["devices"] == [
        {"device_id": "pi-lab", "generation": 1},
        {"device_id": "pi-oslo", "generation": 2},
    ]
    await client.delete("/api/v1/devices/pi-lab")
    by_selector = await assign(client, "warehouse-monitor@latest", selector="site in (oslo,bergen)")
    assert [d["device_id"] for d in by_selector.json()["devices"]] == ["pi-bergen", "pi-oslo"]
    assert await _generations(client) == {"pi-bergen": 1, "pi-oslo": 3}

    answer = (await sync(anon, credential, known_generation=0)).json()
    assert answer["status"] == "changed" and answer["generation"] == 3
    document = answer["desired"]["spec"]
    assert (document["kind"], document["digest"]) == ("bundle", pushed["digest"])
    # Signed by the tenant's server key, with the trust statement devices follow.
    assert [s["key_id"] for s in document["signatures"]] == [
        k["key_id"] for k in document["trust"]["statement"]["keys"]
    ]
    assert parse_bundle(document["bundle"]).digest() == pushed["digest"]
    assert document["bundle"]["containers"][0]["image"] == f"{IMAGE}:1.2.0"

    events = (await client.get("/api/v1/events", params={"device": "pi-oslo"})).json()["items"]
    changed = [e for e in events if e["type"] == "device.desired_state_changed"]
    assert changed[0]["message"] == "desired state: warehouse-monitor@1.2.0 (generation 3)"
    assert changed[0]["actor"] == "user:admin"
    assert changed[0]["data"]["version"] == "1.2.0"
    listed = (await client.get("/api/v1/bundles")).json()
    assert (listed[0]["desired"], listed[0]["running"]) == (2, 0)


async def test_assign_refuses_unclear_or_empty_targets(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1", {"env": "prod"})
    await push(client, BUNDLE)
    ref = "warehouse-monitor@1.2.0"
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"selector": "env=staging"}, 422, "selector", 'no device matched selector "env=staging"'),
        ({"devices": []}, 422, "devices", "no device matched"),
        ({"group": "ghosts"}, 404, "group", 'no group "ghosts"'),
        ({"devices": ["pi-1"], "group": "x"}, 422, "target", "give exactly one target"),
        ({}, 422, "target", "give exactly one target"),
        ({"selector": " "}, 422, "selector", "would match every device"),
        ({"devices": ["pi-9"]}, 404, "devices", "no such devices in this tenant: pi-9"),
    ]
    for target, status, field, detail in cases:
        response = await assign(client, ref, **target)
        assert response.status_code == status, (target, response.text)
        assert response.json()["field"] == field and detail in response.json()["detail"], target
    unknown = await assign(client, "warehouse-monitor@3.0.0", devices=["pi-1"])
    assert unknown.status_code == 404 and unknown.json()["field"] == "version"
    await client.delete("/api/v1/devices/pi-1")
    retired = await assign(client, ref, devices=["pi-1"])
    assert retired.status_code == 422 and "decommissioned" in retired.json()["detail"]
    assert await _generations(client) == {}


async def _viewer(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    password = "correct horse battery"
    created = await client.post(
        "/api/v1/users", json={"username": "vera", "role": "viewer", "password": password}
    )
    assert created.status_code == 201, created.text
    login = await client.post("/api/v1/auth/login", json={"username": "vera", "password": password})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


async def test_viewer_reads_bundles_but_cannot_push_or_assign(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    await new_device(client, anon, "pi-1")
    await push(client, BUNDLE)
    async with await _viewer(client, app) as viewer:
        attempts = [
            await viewer.post("/api/v1/bundles", json=version_of("2.0.0")),
            await viewer.post("/api/v1/bundles", content="not: [valid", headers=YAML),
            await assign(viewer, "warehouse-monitor@1.2.0", devices=["pi-1"]),
        ]
        for response in attempts:
            assert response.status_code == 403, response.text
            assert "operator role" in response.json()["detail"]
        assert [b["name"] for b in (await viewer.get("/api/v1/bundles")).json()] == [
            "warehouse-monitor"
        ]
    assert await _generations(client) == {"pi-1": 0}


REPORTED: dict[str, Any] = {
    "generation": 2,
    "status": "failed",
    "reason": "image pull failed: registry 127.0.0.1:5000 unreachable (connection refused)",
    "bundle": "warehouse-monitor",
    "version": "1.2.0",
    "digest": "sha256:" + "ab" * 32,
    "items": [
        {
            "kind": "container",
            "name": "monitor",
            "state": "running",
            "healthy": True,
            "restart_count": 2,
            "image": f"{IMAGE}:1.2.0",
            "bundle": "warehouse-monitor@1.2.0",
            "last_error": "exited with code 137 (out of memory)",
        }
    ],
}


async def test_device_detail_shows_desired_next_to_reported(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-1")
    await push(client, BUNDLE)
    await push(client, version_of("1.3.0"))
    await assign(client, "warehouse-monitor@1.2.0", devices=["pi-1"])
    await assign(client, "warehouse-monitor@1.3.0", devices=["pi-1"])
    before = (await client.get("/api/v1/devices/pi-1")).json()
    assert before["desired"] == {"bundle": "warehouse-monitor", "version": "1.3.0", "generation": 2}
    assert before["reported"]["status"] == "idle" and before["reported"]["items"] == []

    # 1.3.0 failed to start, so the agent rolled back and still runs 1.2.0.
    assert (await sync(anon, credential, reported=REPORTED)).status_code == 200
    device = (await client.get("/api/v1/devices/pi-1")).json()
    assert device["desired"]["version"] == "1.3.0"
    assert device["reported"] == {
        "status": "failed",
        "reason": REPORTED["reason"],
        # A pull failure happens before anything runs: no unit's output to show.
        "failed_unit": None,
        "failure_log": [],
        "bundle": "warehouse-monitor",
        "version": "1.2.0",
        "digest": REPORTED["digest"],
        "generation": 2,
        "items": [
            {
                **REPORTED["items"][0],
                "since": None,
                "exit_code": None,
                "image_digest": None,
                "artifact_sha256": None,
                "update_order": None,  # the device did not replace it (a first start)
            }
        ],
    }
    row = (await client.get("/api/v1/devices")).json()["items"][0]
    assert (row["bundle"], row["bundle_version"], row["reported_status"]) == (
        "warehouse-monitor",
        "1.2.0",
        "failed",
    )
    versions = (await client.get("/api/v1/bundles/warehouse-monitor")).json()["versions"]
    assert [(v["version"], v["running"], v["desired"]) for v in versions] == [
        ("1.3.0", 0, 1),
        ("1.2.0", 1, 0),
    ]
