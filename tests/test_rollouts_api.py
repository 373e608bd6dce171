"""Rollouts through the real management API, with virtual devices on the real device API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbeam.server.settings import ServerSettings
from tests.rollout_support import BUNDLE, enroll_fleet, push, rollout, status_is

PULL_FAILED = "image pull failed: registry 127.0.0.1:5000 unreachable (connection refused)"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ServerSettings:
    """The usual test settings with a brisk engine, so rollouts move in test time."""
    return ServerSettings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        mdns=False,
        rollout_interval=timedelta(seconds=0.2),
    )


async def _create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/rollouts", json={"bundle": BUNDLE, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _desired(client: httpx.AsyncClient, device_id: str) -> str | None:
    response = await client.get(f"/api/v1/devices/{device_id}")
    assert response.status_code == 200, response.text
    version: str | None = (response.json()["desired_state"].get("bundle") or {}).get("version")
    return version


async def _events(client: httpx.AsyncClient, *types: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/events", params={"type": list(types), "limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[::-1]


async def _on_version_one(client: httpx.AsyncClient, anon: httpx.AsyncClient, count: int) -> Any:
    fleet = await enroll_fleet(client, anon, count, {"site": "oslo"})
    await push(client, "1.0.0")
    await push(client, "2.0.0")
    assigned = await client.post(
        f"/api/v1/bundles/{BUNDLE}/versions/1.0.0/assign", json={"selector": "site=oslo"}
    )
    assert assigned.status_code == 200, assigned.text
    await fleet.sync(anon)
    await fleet.sync(anon)
    assert {device.running for device in fleet.devices} == {(BUNDLE, "1.0.0")}
    return fleet


async def test_three_of_ten_failing_halts_and_rolls_back_saying_who_and_why(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await _on_version_one(client, anon, 10)
    for device_id in ("dev-03", "dev-06", "dev-09"):
        fleet[device_id].fail_with = PULL_FAILED
    created = await _create(
        client, version="2.0.0", selector="site=oslo", waves="1,100%", soak="1s"
    )
    assert created["status"] == "running" and created["wave_count"] == 2

    done = await fleet.until(anon, status_is(client, created["id"], "rolled_back"), "rollback")

    assert done["reason"].startswith(
        "3 of 9 devices in wave 2 of 2 failed, reaching the failure threshold of 30%; failed: "
    )
    assert done["failures"] == [
        {"device_id": device_id, "reason": PULL_FAILED}
        for device_id in ("dev-03", "dev-06", "dev-09")
    ]
    assert [(w["number"], w["devices"], w["counts"]["failed"]) for w in done["waves"]] == [
        (1, 1, 0),
        (2, 9, 3),
    ]
    assert done["devices"][0]["status"] == "succeeded"
    # Every device this rollout changed is told to run 1.0.0 again, and does.
    await fleet.until(anon, _all_run(fleet, "1.0.0"), "every device back on 1.0.0", timeout=30)
    assert {await _desired(client, d.device_id) for d in fleet.devices} == {"1.0.0"}
    types = [e["type"] for e in await _events(client, "rollout.halted", "rollout.rolled_back")]
    assert types == ["rollout.halted", "rollout.rolled_back"]
    failed = await _events(client, "rollout.device_failed")
    assert sorted(e["device_id"] for e in failed) == ["dev-03", "dev-06", "dev-09"]
    assert all(e["data"]["rollout_id"] == created["id"] for e in failed)


def _all_run(fleet: Any, version: str) -> Any:
    async def check() -> bool:
        return all(device.running[1] == version for device in fleet.devices)

    return check


async def test_waves_complete_one_after_another(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await _on_version_one(client, anon, 4)
    created = await _create(
        client,
        version="2.0.0",
        group=None,
        devices=["dev-02", "dev-00", "dev-01", "dev-03"],
        waves="1,50%,100%",
        soak="0s",
    )
    done = await fleet.until(anon, status_is(client, created["id"], "completed"), "completion")
    assert [[d["device_id"] for d in done["devices"] if d["wave"] == n] for n in (1, 2, 3)] == [
        ["dev-02"],
        ["dev-00"],
        ["dev-01", "dev-03"],
    ]
    assert done["counts"]["succeeded"] == 4 and done["wave"] == 3
    assert done["reason"] == "4 devices run door-sensor@2.0.0; 0 failed, 0 skipped"
    assert {d.running for d in fleet.devices} == {(BUNDLE, "2.0.0")}
    started = await _events(client, "rollout.wave_started")
    assert [e["message"].split(": ")[1] for e in started] == [
        "wave 1 of 3 started with 1 devices (dev-02)",
        "wave 2 of 3 started with 1 devices (dev-00)",
        "wave 3 of 3 started with 2 devices (dev-01, dev-03)",
    ]


async def test_plan_changes_nothing_and_bad_input_names_the_field(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await enroll_fleet(client, anon, 4, {"site": "oslo"})
    await push(client, "2.0.0")
    fleet.devices.pop()  # dev-03 stops syncing; the plan still places it, marked offline
    planned = await client.post(
        "/api/v1/rollouts",
        params={"plan": "true"},
        json={
            "bundle": BUNDLE,
            "version": "latest",
            "selector": "site=oslo",
            "waves": "1,50%,100%",
        },
    )
    assert planned.status_code == 200, planned.text
    assert planned.json()["waves"] == [["dev-00"], ["dev-01"], ["dev-02", "dev-03"]]
    assert planned.json()["version"] == "2.0.0"
    assert (await client.get("/api/v1/rollouts")).json() == []

    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"waves": "50%,10%"}, 422, "waves", 'waves "50%,10%" shrink'),
        ({"failure_threshold": "lots"}, 422, "failure_threshold", '"lots" is neither a number'),
        ({"soak": "forever"}, 422, "soak", "forever"),
        ({"soak": "400d"}, 422, "soak", 'soak "400d" is longer than a year'),
        ({"apply_timeout": "9" * 30 + "d"}, 422, "apply_timeout", "longer than a year"),
        ({"max_parallel": 0}, 422, "max_parallel", "max_parallel 0 would never update a device"),
        (
            {"on_failure": "panic"},
            422,
            "on_failure",
            'on_failure "panic" is not one of rollback or pause',
        ),
        ({"selector": None, "group": "nope"}, 404, "group", 'no group "nope"'),
        ({"selector": None}, 422, "target", "give exactly one target"),
        ({"version": "9.9.9"}, 404, "version", "no version 9.9.9 of door-sensor"),
        ({"bundle": "ghost"}, 404, "bundle", 'no bundle "ghost" in this tenant; push it first'),
        ({"selector": "site=bergen"}, 404, "selector", 'no device matches selector "site=bergen"'),
    ]
    for change, status, field, detail in cases:
        body = {"bundle": BUNDLE, "version": "2.0.0", "selector": "site=oslo", **change}
        response = await client.post("/api/v1/rollouts", json=body)
        assert response.status_code == status, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["field"] == field and detail in problem["detail"], (change, problem)


async def test_a_second_rollout_on_a_device_is_refused_naming_the_first(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await _on_version_one(client, anon, 3)
    first = await _create(client, version="2.0.0", devices=["dev-00", "dev-01"], soak="1h")
    response = await client.post(
        "/api/v1/rollouts",
        json={"bundle": BUNDLE, "version": "1.0.0", "devices": ["dev-02", "dev-01"]},
    )
    assert response.status_code == 409, response.text
    assert response.json()["field"] == "target"
    assert response.json()["detail"].startswith(
        f"device dev-01 is already in active rollout {first['id']} ({BUNDLE}@2.0.0); "
        "only one active rollout may target a device"
    )
    assert (await client.post(f"/api/v1/rollouts/{first['id']}/cancel")).status_code == 200
    again = await _create(client, version="1.0.0", devices=["dev-02", "dev-01"])
    assert again["id"] != first["id"]


async def test_pause_resume_and_manual_rollback(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await _on_version_one(client, anon, 3)
    created = await _create(
        client, version="2.0.0", selector="site=oslo", waves="100%", soak="1h", max_parallel=1
    )
    rollout_id = created["id"]

    async def soaking() -> dict[str, Any] | None:
        body = await rollout(client, rollout_id)
        return body if body["counts"]["soaking"] == 1 else None

    await fleet.until(anon, soaking, "the first device soaking")
    paused = await client.post(f"/api/v1/rollouts/{rollout_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused", paused.text
    again = await client.post(f"/api/v1/rollouts/{rollout_id}/pause")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"rollout {rollout_id} ({BUNDLE}@2.0.0) is paused, so it cannot be paused; "
        "a paused rollout can be resumed, cancelled or rolled back"
    )
    # Paused, devices already updating go on, but no pending device starts.
    pending = paused.json()["counts"]["pending"]
    assert pending >= 1
    for _ in range(3):
        await fleet.sync(anon)
    assert (await rollout(client, rollout_id))["counts"]["pending"] == pending
    resumed = await client.post(f"/api/v1/rollouts/{rollout_id}/resume")
    assert resumed.json()["status"] == "running"

    rolled = await client.post(f"/api/v1/rollouts/{rollout_id}/rollback")
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back", rolled.text
    assert rolled.json()["reason"] == "rolled back by an operator"
    await fleet.until(anon, _all_run(fleet, "1.0.0"), "every device back on 1.0.0")
    missing = await client.post("/api/v1/rollouts/999/pause")
    assert missing.status_code == 404 and missing.json()["field"] == "rollout_id"
    types = [
        e["type"]
        for e in await _events(
            client, "rollout.created", "rollout.paused", "rollout.resumed", "rollout.rolled_back"
        )
    ]
    assert types == ["rollout.created", "rollout.paused", "rollout.resumed", "rollout.rolled_back"]


async def test_on_failure_pause_halts_and_resuming_accepts_the_failure(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    fleet = await _on_version_one(client, anon, 3)
    fleet["dev-01"].fail_with = PULL_FAILED
    created = await _create(
        client,
        version="2.0.0",
        selector="site=oslo",
        waves="100%",
        soak="0s",
        failure_threshold="1",
        on_failure="pause",
    )
    halted = await fleet.until(anon, status_is(client, created["id"], "halted"), "the halt")
    assert halted["reason"] == (
        f"1 devices failed, reaching the failure threshold of 1; failed: dev-01 ({PULL_FAILED})"
    )
    # Halted, not rolled back: nothing was sent back.
    assert await _desired(client, "dev-00") == "2.0.0"

    resumed = await client.post(f"/api/v1/rollouts/{created['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    done = await fleet.until(anon, status_is(client, created["id"], "completed"), "completion")
    assert done["reason"] == "2 devices run door-sensor@2.0.0; 1 failed, 0 skipped"
    assert fleet["dev-01"].running == (BUNDLE, "1.0.0")
