"""Device API beyond enroll and sync: watch (long-poll), queued telemetry, desired state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from signalbeam.domain.model import Role
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.desired import set_desired
from tests.helpers import new_device


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


ADMIN = Actor(1, "user", "admin", Role.ADMIN, 1)


async def test_watch_wakes_on_desired_state_change(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credential = await new_device(client, anon, "pi")
    idle = await anon.get(
        "/api/device/v1/watch", params={"generation": 0, "timeout": 0}, headers=auth(credential)
    )
    assert idle.json() == {"status": "unchanged", "generation": 0}

    held = asyncio.create_task(
        anon.get(
            "/api/device/v1/watch",
            params={"generation": 0, "timeout": 30},
            headers=auth(credential),
        )
    )
    while runtime.watchers.watching == 0:  # noqa: ASYNC110 - waits for the request to be held
        await asyncio.sleep(0.01)
    assert not held.done()
    generations = await set_desired(
        runtime, ADMIN, ["pi"], {"bundle": "demo@1.0.0"}, "desired state: demo@1.0.0"
    )
    answer = await asyncio.wait_for(held, 10)
    assert answer.json() == {"status": "changed", "generation": generations["pi"]}
    assert runtime.watchers.watching == 0

    synced = (
        await anon.post(
            "/api/device/v1/sync", json={"known_generation": 0}, headers=auth(credential)
        )
    ).json()
    assert synced["desired"] == {"generation": 1, "spec": {"bundle": "demo@1.0.0"}}
    behind = await anon.get(
        "/api/device/v1/watch", params={"generation": 0}, headers=auth(credential)
    )
    assert behind.json()["status"] == "changed", (
        "an agent behind the current generation is told at once"
    )
    events = (
        await client.get(
            "/api/v1/events", params={"device": "pi", "type": "device.desired_state_changed"}
        )
    ).json()["items"]
    assert events[0]["message"] == "desired state: demo@1.0.0 (generation 1)"


async def test_watch_brings_the_new_desired_state_when_asked(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    credential = await new_device(client, anon, "pi")
    held = asyncio.create_task(
        anon.get(
            "/api/device/v1/watch",
            params={"generation": 0, "timeout": 30, "with_desired": "true"},
            headers=auth(credential),
        )
    )
    while runtime.watchers.watching == 0:  # noqa: ASYNC110 - waits for the request to be held
        await asyncio.sleep(0.01)
    await set_desired(runtime, ADMIN, ["pi"], {"bundle": "demo@2.0.0"}, "desired: demo@2.0.0")
    answer = (await asyncio.wait_for(held, 10)).json()
    assert answer == {
        "status": "changed",
        "generation": 1,
        "desired": {"generation": 1, "spec": {"bundle": "demo@2.0.0"}},
    }
    # Already behind when it asks: no wake-up carried a spec, so the agent syncs for it.
    behind = await anon.get(
        "/api/device/v1/watch",
        params={"generation": 0, "with_desired": "true"},
        headers=auth(credential),
    )
    assert behind.json() == {"status": "changed", "generation": 1}


async def test_watch_validation(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    credential = await new_device(client, anon, "pi")
    too_long = await anon.get(
        "/api/device/v1/watch", params={"generation": 0, "timeout": 3600}, headers=auth(credential)
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "timeout"
    missing = await anon.get("/api/device/v1/watch", headers=auth(credential))
    assert missing.status_code == 422 and missing.json()["field"] == "generation"
    assert missing.headers["content-type"] == "application/problem+json"
    word = await anon.get(
        "/api/device/v1/watch", params={"generation": "two"}, headers=auth(credential)
    )
    assert word.status_code == 422 and word.json()["field"] == "generation"
    # A stranger learns nothing about the query's rules: no credential is a 401 first.
    stranger = await anon.get("/api/device/v1/watch", params={"timeout": 3600})
    assert stranger.status_code == 401
    wrong = await anon.post("/api/device/v1/watch", headers=auth(credential))
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]


async def test_telemetry_is_stored_once_in_order(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi")
    taken = datetime.now(UTC) - timedelta(minutes=10)
    batch: dict[str, Any] = {
        "samples": [
            {
                "seq": i,
                "heartbeat": {
                    "cpu_percent": 10.0 * i,
                    "sampled_at": (taken + timedelta(seconds=i)).isoformat(),
                },
            }
            for i in (1, 2, 3)
        ],
        "events": [
            {
                "seq": 1,
                "type": "agent.started",
                "message": "agent 0.1.0 started",
                "occurred_at": taken.isoformat(),
            },
            {
                "seq": 2,
                "type": "agent.clock_jump",
                "message": "clock jumped 3600s",
                "data": {"seconds": 3600},
                "occurred_at": taken.isoformat(),
            },
        ],
        "dropped_samples": 7,
    }
    first = await anon.post("/api/device/v1/telemetry", json=batch, headers=auth(credential))
    assert first.json() == {"samples_through": 3, "events_through": 2}
    # The ack got lost and the agent sends the same batch plus one more sample: nothing doubles.
    batch["samples"].append(
        {
            "seq": 4,
            "heartbeat": {
                "cpu_percent": 40.0,
                "sampled_at": (taken + timedelta(seconds=4)).isoformat(),
            },
        }
    )
    batch["dropped_samples"] = 0
    again = await anon.post("/api/device/v1/telemetry", json=batch, headers=auth(credential))
    assert again.json() == {"samples_through": 4, "events_through": 2}

    window = {
        "from": (taken - timedelta(minutes=1)).isoformat(),
        "to": (taken + timedelta(minutes=1)).isoformat(),
        "step": "1h",
    }
    points = (await client.get("/api/v1/devices/pi/metrics", params=window)).json()["points"]
    assert sum(p["samples"] for p in points) == 4
    events = (await client.get("/api/v1/events", params={"device": "pi"})).json()["items"]
    agent_events = [
        e
        for e in reversed(events)
        if e["type"] != "device.registered" and e["actor"] == "device:pi"
    ]
    assert [e["type"] for e in agent_events] == [
        "agent.started",
        "agent.clock_jump",
        "device.samples_dropped",
    ]
    assert "7 metric samples" in agent_events[2]["message"]
    filtered = await client.get("/api/v1/events", params={"type": "agent.started"})
    assert [e["type"] for e in filtered.json()["items"]] == ["agent.started"]


async def test_telemetry_rejects_bad_event_types(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi")
    forged = {
        "events": [
            {
                "seq": 1,
                "type": "device.decommissioned",
                "message": "x",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        ]
    }
    response = await anon.post("/api/device/v1/telemetry", json=forged, headers=auth(credential))
    assert response.status_code == 422
    assert response.json()["field"] == "events[0].type"


async def test_desired_state_over_http_reaches_the_device(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await new_device(client, anon, "pi")
    body = {"devices": ["pi"], "spec": {"containers": []}, "summary": "desired state: empty"}
    response = await client.post("/api/v1/devices/desired-state", json=body)
    assert response.json() == {"generations": {"pi": 1}}
    synced = await anon.post(
        "/api/device/v1/sync", json={"known_generation": 0}, headers=auth(credential)
    )
    assert synced.json()["desired"] == {"generation": 1, "spec": {"containers": []}}
    unknown = await client.post(
        "/api/v1/devices/desired-state", json={**body, "devices": ["pi", "ghost"]}
    )
    assert unknown.status_code == 404 and "ghost" in unknown.json()["detail"]
