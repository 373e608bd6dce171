"""Enroll, sync, list, inspect, label and decommission devices through the real API."""

from __future__ import annotations

import httpx

from tests.helpers import enroll, enrollment_token, new_device, sync


async def test_enrolled_device_syncs_and_shows_online(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enrollment_token(client, labels={"site": "oslo"})
    credential = await enroll(anon, token, "pi-001", name="Kitchen Pi", labels={"env": "prod"})
    listed = (await client.get("/api/v1/devices")).json()
    assert [d["presence"] for d in listed["items"]] == ["new"]

    response = await sync(anon, credential, known_generation=-1)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "changed"
    assert answer["desired"] == {"generation": 0, "spec": {}}
    assert answer["hints"]["sync_interval_seconds"] == 15

    again = (await sync(anon, credential, known_generation=0)).json()
    assert again["status"] == "unchanged" and again["desired"] is None

    device = (await client.get("/api/v1/devices/pi-001")).json()
    assert device["name"] == "Kitchen Pi"
    assert device["presence"] == "online"
    assert device["labels"] == {"site": "oslo", "env": "prod"}
    assert device["facts"]["arch"] == "aarch64"
    assert device["metrics"]["cpu_percent"] == 12.5
    assert device["metrics"]["disk_percent"] == 55.0
    types = [e["type"] for e in device["events"]]
    assert types == ["device.online", "device.registered"]


async def test_reenroll_rotates_credential_and_keeps_history(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enrollment_token(client)
    old = await enroll(anon, token, "pi-002")
    assert (await sync(anon, old)).status_code == 200
    new = await enroll(anon, token, "pi-002")
    assert old != new
    assert (await sync(anon, old)).status_code == 401
    assert (await sync(anon, new)).status_code == 200
    events = (await client.get("/api/v1/events", params={"device": "pi-002"})).json()["items"]
    assert [e["type"] for e in events] == [
        "device.credential_rotated",
        "device.online",
        "device.registered",
    ]


async def test_filters_sorting_and_paging(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "a-oslo", {"env": "prod", "site": "oslo"})
    await new_device(client, anon, "b-bergen", {"env": "prod", "site": "bergen"})
    await new_device(client, anon, "c-retired", {"env": "prod", "site": "oslo", "retired": "yes"})
    await new_device(client, anon, "d-dev", {"env": "dev", "site": "oslo"})

    async def ids(**params: str | int) -> list[str]:
        response = await client.get("/api/v1/devices", params=params)
        assert response.status_code == 200, response.text
        return [d["device_id"] for d in response.json()["items"]]

    assert await ids(selector="env=prod,site in (oslo,bergen),!retired") == ["a-oslo", "b-bergen"]
    assert await ids(selector="site notin (oslo)") == ["b-bergen"]
    assert await ids(search="BERG") == ["b-bergen"]
    assert await ids(sort="-name") == ["d-dev", "c-retired", "b-bergen", "a-oslo"]
    assert await ids(limit=2, offset=2) == ["c-retired", "d-dev"]
    page = (await client.get("/api/v1/devices", params={"limit": 1})).json()
    assert page["total"] == 4
    assert await ids(status="offline") == []


async def test_labels_edit_and_group_membership_follow(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await new_device(client, anon, "pi-1", {"env": "dev", "old": "x"})
    created = await client.post("/api/v1/groups", json={"name": "prod", "selector": "env=prod"})
    assert created.status_code == 201, created.text
    response = await client.patch(
        "/api/v1/devices/pi-1/labels", json={"set": {"env": "prod"}, "remove": ["old"]}
    )
    assert response.status_code == 200
    assert response.json()["labels"] == {"env": "prod"}
    device = (await client.get("/api/v1/devices/pi-1")).json()
    assert device["groups"] == ["prod"]
    changed = [
        e
        for e in device["events"]
        if e["type"] in ("device.labels_changed", "device.groups_changed")
    ]
    assert [e["message"] for e in changed] == [
        "groups changed: joined prod",
        "labels changed: env=prod old-",
    ]
    assert all(e["actor"] == "user:admin" for e in changed)


async def test_decommission_revokes_credential_and_keeps_history(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi-gone")
    response = await client.delete("/api/v1/devices/pi-gone")
    assert response.status_code == 200
    assert response.json()["presence"] == "decommissioned"
    refused = await sync(anon, credential)
    assert refused.status_code == 401
    assert "decommissioned" in refused.json()["detail"]
    assert (await client.get("/api/v1/devices")).json()["total"] == 0
    gone = (await client.get("/api/v1/devices", params={"status": "decommissioned"})).json()
    assert [d["device_id"] for d in gone["items"]] == ["pi-gone"]
    history = (await client.get("/api/v1/devices/pi-gone")).json()["events"]
    assert history[0]["type"] == "device.decommissioned"
    assert len(history) == 3
