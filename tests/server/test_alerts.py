"""Alerts through the API: rules a tenant starts with, incidents that open once, resolve
themselves, reopen when a device flaps, and show what changed before them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.presence import sweep
from tests.helpers import eventually, new_device, sync
from tests.test_problems import assert_problem

RULES = "/api/v1/alerts/rules"
INCIDENTS = "/api/v1/alerts/incidents"


async def go_offline(runtime: Runtime) -> None:
    """Run the presence sweep as if the devices had been silent past the threshold."""
    later = datetime.now(UTC) + runtime.settings.offline_after + timedelta(seconds=1)
    assert await sweep(runtime, runtime.ingestor, now=later) > 0


async def incidents(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(INCIDENTS, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_new_tenant_starts_with_the_default_rules_on(client: httpx.AsyncClient) -> None:
    rules = (await client.get(RULES)).json()
    assert [(r["name"], r["kind"], r["for_seconds"], r["enabled"]) for r in rules] == [
        ("device-offline", "device_offline", 300, True),
        ("disk-full", "metric_above", 600, True),
        ("rollout-rolled-back", "rollout_rolled_back", 0, True),
        ("update-failed", "update_failed", 0, True),
    ]
    assert rules[0]["description"] == "device offline for 5m"
    assert rules[1]["description"] == "disk above 90% for 10m"


async def test_an_offline_device_fires_once_resolves_on_return_and_reopens_when_it_flaps(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    kiosk = await new_device(client, anon, "kiosk-1", {"role": "kiosk"})
    await new_device(client, anon, "gateway-1", {"role": "gateway"})
    body = {
        "name": "kiosk-offline",
        "kind": "device_offline",
        "for": "1s",
        "selector": "role=kiosk",
    }
    created = await client.post(RULES, json=body)
    assert created.status_code == 201, created.text
    await client.patch("/api/v1/devices/kiosk-1/labels", json={"set": {"site": "lobby"}})

    await go_offline(runtime)
    firing = await eventually(lambda: incidents(client, state="firing"), "an incident firing")
    assert [(i["rule"], i["subject"], i["fired_count"]) for i in firing] == [
        ("kiosk-offline", "kiosk-1", 1)
    ]  # the gateway is out of the rule's scope; the 5-minute default has not fired yet
    assert firing[0]["title"] == "kiosk-1: device offline for 1s"
    assert firing[0]["cause"]["type"] == "device.labels_changed"
    assert "site" in firing[0]["cause"]["message"]

    assert (await sync(anon, kiosk)).status_code == 200
    resolved = await eventually(
        lambda: incidents(client, state="resolved"), "the incident resolving itself"
    )
    assert [i["id"] for i in resolved] == [firing[0]["id"]]

    await go_offline(runtime)
    again = await eventually(lambda: incidents(client, state="firing"), "the incident firing again")
    assert [(i["id"], i["fired_count"]) for i in again] == [(firing[0]["id"], 2)]
    detail = (await client.get(f"{INCIDENTS}/{firing[0]['id']}")).json()
    assert [e["kind"] for e in detail["timeline"]] == ["fired", "resolved", "fired again"]
    assert len(await incidents(client)) == 1, "a flapping device makes one incident, not several"
    events = (await client.get("/api/v1/events", params={"device": "kiosk-1"})).json()["items"]
    assert {"incident.opened", "incident.resolved", "incident.reopened"} <= {
        e["type"] for e in events
    }


async def test_operators_acknowledge_and_resolve_by_hand(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    await new_device(client, anon, "pi-1")
    await client.patch(f"{RULES}/device-offline", json={"for": "1s", "severity": "warning"})
    await go_offline(runtime)
    (firing,) = await eventually(lambda: incidents(client, state="firing"), "an incident")
    assert firing["severity"] == "warning"
    url = f"{INCIDENTS}/{firing['id']}"
    acked = (await client.post(f"{url}/ack")).json()
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "user:admin")
    assert_problem(await client.post(f"{url}/ack"), 409, "incident")
    done = (await client.post(f"{url}/resolve")).json()
    assert (done["state"], done["resolved_by"]) == ("resolved", "user:admin")
    assert [e["kind"] for e in done["timeline"]] == ["fired", "acknowledged", "resolved"]
    assert_problem(await client.post(f"{INCIDENTS}/999999/ack"), 404, "incident")


async def test_bad_rules_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"name": "x", "kind": "cpu_high"}, 422, "kind"),
        ({"name": "x", "kind": "device_offline"}, 422, "for"),
        ({"name": "x", "kind": "update_failed", "selector": "env in (("}, 422, "selector"),
        ({"name": "x", "kind": "update_failed", "group": "nope"}, 404, "group"),
        ({"name": "x", "kind": "rollout_halted", "selector": "env=prod"}, 422, "selector"),
        ({"name": "device-offline", "kind": "update_failed"}, 409, "name"),
    ]
    for body, status, field in cases:
        assert_problem(await client.post(RULES, json=body), status, field)
    assert_problem(await client.patch(f"{RULES}/nope", json={"enabled": False}), 404, "rule")


async def test_a_preview_names_the_devices_a_rule_would_fire_on_now(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    await new_device(client, anon, "kiosk-1", {"role": "kiosk"})
    await new_device(client, anon, "kiosk-2", {"role": "kiosk"})
    await new_device(client, anon, "gateway-1", {"role": "gateway"})
    await go_offline(runtime)
    body = {"name": "draft", "kind": "device_offline", "for": "1s", "selector": "role=kiosk"}

    async def would_fire() -> dict[str, Any] | None:
        found: dict[str, Any] = (await client.post("/api/v1/alerts/preview", json=body)).json()
        return found if found["total"] == 2 else None

    # Offline now, and silent for longer than 1s a moment later (their last sync was just now).
    preview = await eventually(would_fire, "the kiosks silent for over 1s")
    assert (preview["would_fire"], preview["total"]) == (["kiosk-1", "kiosk-2"], 2)
    assert [r["name"] for r in (await client.get(RULES)).json()].count("draft") == 0


def beat(cpu: float, disk: float = 50.0) -> dict[str, Any]:
    return {
        "cpu_percent": cpu,
        "memory_percent": 30.0,
        "disks": [{"mount": "/data", "percent": disk}],
    }


async def test_a_metric_over_its_threshold_for_a_while_fires_and_clears_below_it(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    hot = await new_device(client, anon, "pi-hot")
    cool = await new_device(client, anon, "pi-cool")
    body = {
        "name": "cpu-hot",
        "kind": "metric_above",
        "metric": "cpu",
        "threshold": 80,
        "for": "1s",
    }
    created = await client.post(RULES, json=body)
    assert created.json()["description"] == "cpu above 80% for 1s"

    async def firing() -> list[dict[str, Any]] | None:
        # The devices keep reporting, as agents do; rules reach ingest within seconds.
        await sync(anon, hot, heartbeat=beat(95))
        await sync(anon, cool, heartbeat=beat(79))
        return await incidents(client, state="firing") or None

    (incident,) = await eventually(firing, "pi-hot's cpu incident")
    assert (incident["rule"], incident["subject"]) == ("cpu-hot", "pi-hot")
    # Just under the threshold is not normal yet (a value must fall 5 points): still firing.
    await sync(anon, hot, heartbeat=beat(78))

    async def resolved() -> list[dict[str, Any]] | None:
        await sync(anon, hot, heartbeat=beat(40))
        return await incidents(client, state="resolved") or None

    assert [i["id"] for i in await eventually(resolved, "the cpu incident resolving")] == [
        incident["id"]
    ]
    events = (await client.get("/api/v1/events", params={"device": "pi-hot"})).json()["items"]
    crossings = [e["message"] for e in events if e["type"].startswith("device.metric_")]
    assert crossings == [
        "cpu back to 40% (rule cpu-hot)",
        "cpu above 80% for 1s (95%; rule cpu-hot)",
    ]


async def test_metric_rules_are_checked_naming_the_field(client: httpx.AsyncClient) -> None:
    base = {"name": "m", "kind": "metric_above", "for": "1m"}
    cases = [
        ({**base, "metric": "fans", "threshold": 1}, "metric"),
        ({**base, "metric": "cpu", "threshold": 150}, "threshold"),
        ({**base, "metric": "cpu"}, "threshold"),
        ({**base, "metric": "cpu", "threshold": 90, "mount": "/data"}, "mount"),
        ({"name": "m", "kind": "update_failed", "metric": "cpu"}, "metric"),
    ]
    for body, field in cases:
        assert_problem(await client.post(RULES, json=body), 422, field)


async def agent_event(anon: httpx.AsyncClient, credential: str, seq: int, type_: str) -> None:
    event = {
        "seq": seq,
        "type": type_,
        "message": f"monitor@1.2.0 is {type_.removeprefix('agent.')}",
        "data": {"reason": "unit monitor restarted 4 times in 60s"},
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    response = await anon.post(
        "/api/device/v1/telemetry",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 200, response.text


async def test_a_crash_looping_unit_fires_until_the_agent_says_it_recovered(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    pi = await new_device(client, anon, "pi-loop")
    body = {"name": "unit-down", "kind": "unit_degraded", "severity": "critical"}
    assert (await client.post(RULES, json=body)).status_code == 201
    await agent_event(anon, pi, 1, "agent.degraded")
    (incident,) = await eventually(lambda: incidents(client, state="firing"), "the incident")
    assert incident["title"] == "pi-loop: unit degraded or crash-looping"
    await agent_event(anon, pi, 2, "agent.recovered")
    resolved = await eventually(lambda: incidents(client, state="resolved"), "it resolving")
    assert [i["id"] for i in resolved] == [incident["id"]]
