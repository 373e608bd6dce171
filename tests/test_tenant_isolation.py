"""Two tenants on one server: no API, device or management, reaches the other's rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants
from signalbeam.server.services import users as user_service
from tests.helpers import enroll, enrollment_token, eventually, new_device, sync
from tests.server.receivers import HttpReceiver, http_receiver
from tests.server.test_alerts import go_offline, incidents


@dataclass
class Other:
    """The second tenant: its admin client and one device, group and tokens of its own."""

    client: httpx.AsyncClient
    credential: str
    token_id: int
    api_token_id: int
    admin_token: str


@pytest.fixture
async def other(app: FastAPI, runtime: Runtime, anon: httpx.AsyncClient) -> AsyncIterator[Other]:
    created = await tenants.create(runtime, "acme", "Acme", "boss")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {created.admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        credential = await new_device(c, anon, "acme-pi", {"env": "prod"})
        await c.post("/api/v1/groups", json={"name": "acme-static"})
        await c.post("/api/v1/groups", json={"name": "acme-prod", "selector": "env=prod"})
        token_id = (await c.get("/api/v1/enrollment-tokens")).json()[0]["id"]
        api_token_id = (await c.get("/api/v1/api-tokens")).json()[0]["id"]
        yield Other(c, credential, token_id, api_token_id, created.admin_token)


async def test_management_reads_stay_inside_the_tenant(
    client: httpx.AsyncClient, other: Other
) -> None:
    assert (await client.get("/api/v1/devices")).json()["total"] == 0
    assert (await client.get("/api/v1/devices", params={"selector": "env=prod"})).json()[
        "total"
    ] == 0
    assert (await client.get("/api/v1/devices/acme-pi")).status_code == 404
    assert (await client.get("/api/v1/devices/acme-pi/metrics")).status_code == 404
    assert (await client.get("/api/v1/groups")).json() == []
    assert (await client.get("/api/v1/groups/acme-prod")).status_code == 404
    assert (await client.get("/api/v1/events", params={"device": "acme-pi"})).status_code == 404
    own_events = (await client.get("/api/v1/events")).json()["items"]
    assert all(e["device_id"] != "acme-pi" and "acme" not in e["message"] for e in own_events)
    assert [u["username"] for u in (await client.get("/api/v1/users")).json()] == ["admin"]
    assert all(
        t["id"] != other.token_id for t in (await client.get("/api/v1/enrollment-tokens")).json()
    )


async def test_management_writes_cannot_touch_the_other_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    assert (
        await client.patch("/api/v1/devices/acme-pi/labels", json={"set": {"x": "y"}})
    ).status_code == 404
    assert (await client.delete("/api/v1/devices/acme-pi")).status_code == 404
    assert (await client.delete("/api/v1/groups/acme-static")).status_code == 404
    assert (
        await client.post("/api/v1/groups/acme-static/members", json={"devices": ["acme-pi"]})
    ).status_code == 404
    await client.post("/api/v1/groups", json={"name": "mine"})
    steal = await client.post("/api/v1/groups/mine/members", json={"devices": ["acme-pi"]})
    assert steal.status_code == 404
    assert (await client.delete(f"/api/v1/enrollment-tokens/{other.token_id}")).status_code == 404
    assert (await client.delete(f"/api/v1/api-tokens/{other.api_token_id}")).status_code == 404
    # Their side is untouched: device still syncing with its labels, groups and tokens intact.
    assert (await sync(anon, other.credential)).status_code == 200
    theirs = (await other.client.get("/api/v1/devices/acme-pi")).json()
    assert theirs["labels"] == {"env": "prod"} and theirs["presence"] == "online"
    assert sorted(g["name"] for g in (await other.client.get("/api/v1/groups")).json()) == [
        "acme-prod",
        "acme-static",
    ]
    assert (await other.client.get("/api/v1/enrollment-tokens")).json()[0]["revoked"] is False
    assert (await other.client.get("/api/v1/me")).status_code == 200


async def test_same_device_id_in_two_tenants_is_two_devices(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    mine = await enroll(
        anon, await enrollment_token(client, labels={"owner": "default"}), "acme-pi"
    )
    assert (await sync(anon, mine)).status_code == 200
    ours = (await client.get("/api/v1/devices/acme-pi")).json()
    theirs = (await other.client.get("/api/v1/devices/acme-pi")).json()
    assert ours["labels"] == {"owner": "default"}
    assert theirs["labels"] == {"env": "prod"}
    assert [e["type"] for e in ours["events"]] == ["device.online", "device.registered"]
    await client.delete("/api/v1/devices/acme-pi")
    assert (await sync(anon, other.credential)).status_code == 200
    assert (await sync(anon, mine)).status_code == 401


async def test_enrollment_token_joins_only_its_own_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    token = await enrollment_token(other.client)
    await enroll(anon, token, "joined-acme")
    assert (await client.get("/api/v1/devices/joined-acme")).status_code == 404
    assert (await other.client.get("/api/v1/devices/joined-acme")).status_code == 200


async def test_event_stream_only_carries_own_tenant(
    client: httpx.AsyncClient, runtime: Runtime, other: Other
) -> None:
    own_tenant = (await client.get("/api/v1/me")).json()["tenant_id"]
    subscription = runtime.bus.subscribe(own_tenant)
    try:
        await other.client.patch("/api/v1/devices/acme-pi/labels", json={"set": {"site": "x"}})
        await client.post("/api/v1/groups", json={"name": "ours"})
        first = await asyncio.wait_for(subscription.get(), 5)
        assert first is not None and first["type"] == "group.created"
        assert first["message"].startswith("group ours")
        assert subscription.queue.empty()
    finally:
        subscription.close()


BUNDLE = {
    "name": "acme-monitor",
    "version": "1.0.0",
    "containers": [{"name": "monitor", "image": "127.0.0.1:5000/acme-monitor:1.0.0"}],
}


async def test_bundles_stay_inside_the_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    assert (await other.client.post("/api/v1/bundles", json=BUNDLE)).status_code == 201
    second = {**BUNDLE, "version": "1.1.0"}
    assert (await other.client.post("/api/v1/bundles", json=second)).status_code == 201
    assert (await client.get("/api/v1/bundles")).json() == []
    path = "/api/v1/bundles/acme-monitor"
    assert (await client.get(path)).status_code == 404
    assert (await client.get(f"{path}/versions/latest")).status_code == 404
    assert (
        await client.get(f"{path}/diff", params={"from": "1.0.0", "to": "1.1.0"})
    ).status_code == 404
    await new_device(client, anon, "our-pi", {"env": "prod"})
    for target in ({"devices": ["our-pi"]}, {"selector": "env=prod"}):
        assert (await client.post(f"{path}/versions/1.0.0/assign", json=target)).status_code == 404

    # The same name in our tenant is our own bundle, and it cannot reach their device.
    mine = {**BUNDLE, "containers": [{"name": "monitor", "image": "ours:1"}]}
    assert (await client.post("/api/v1/bundles", json=mine)).status_code == 201
    steal = await client.post(f"{path}/versions/1.0.0/assign", json={"devices": ["acme-pi"]})
    assert steal.status_code == 404 and "acme-pi" in steal.json()["detail"]
    by_selector = await client.post(f"{path}/versions/1.0.0/assign", json={"selector": "env=prod"})
    assert [d["device_id"] for d in by_selector.json()["devices"]] == ["our-pi"]
    theirs = (await other.client.get("/api/v1/devices/acme-pi")).json()
    assert theirs["desired"] == {"bundle": None, "version": None, "generation": 0}
    assert (await other.client.get(f"{path}/versions/1.0.0")).json()["spec"]["containers"][0][
        "image"
    ] == "127.0.0.1:5000/acme-monitor:1.0.0"
    assert (await other.client.get("/api/v1/bundles")).json()[0]["desired"] == 0


async def test_sessions_and_remote_access_stay_inside_the_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime, other: Other
) -> None:
    await client.put("/api/v1/remote-access", json={"enabled": True})
    for kind, body in ((":exec", {"command": ["id"]}), (":logs", {"unit": "agent"})):
        response = await client.post(f"/api/v1/devices/acme-pi{kind}", json=body)
        assert response.status_code == 404, response.text
    assert runtime.broker.running == 0  # nothing was offered to their device
    # Our switch is ours: their tenant still has remote access off, and theirs cannot open it.
    assert (await other.client.get("/api/v1/remote-access")).json()["enabled"] is False
    refused = await other.client.post("/api/v1/devices/acme-pi:exec", json={"command": ["id"]})
    assert refused.status_code == 403
    # Their operator cannot attach to a session of ours either (same id, wrong tenant).
    await new_device(client, anon, "our-pi")
    created = (await client.post("/api/v1/devices/our-pi:exec", json={"command": ["id"]})).json()
    their_actor = await user_service.authenticate(runtime, other.admin_token)
    assert runtime.broker.claim_for_operator(created["session"], their_actor) is None


async def test_actions_cannot_touch_the_other_tenants_devices(
    client: httpx.AsyncClient, other: Other
) -> None:
    assert (await client.post("/api/v1/devices/acme-pi:cordon")).status_code == 404
    body = {"action": "cordon", "devices": ["acme-pi"]}
    assert (await client.post("/api/v1/actions", json=body)).status_code == 404
    for path, sent in (
        ("acme-pi:restart", {"unit": "monitor"}),
        ("acme-pi:restart-agent", None),
        ("acme-pi:reboot", None),
        ("acme-pi:drain", None),
    ):
        assert (await client.post(f"/api/v1/devices/{path}", json=sent)).status_code == 404
    for action in ("restart", "restart-agent", "reboot", "drain"):
        unit = {"unit": "monitor"} if action == "restart" else {}
        body = {"action": action, "devices": ["acme-pi"], **unit}
        assert (await client.post("/api/v1/actions", json=body)).status_code == 404
        # Their selector matches none of ours: nothing of theirs is reached.
        by_selector = {"action": action, "selector": "env=prod", **unit}
        matched = await client.post("/api/v1/actions", json=by_selector)
        assert matched.status_code == 404, matched.text
        assert matched.json()["detail"].startswith("no device matches selector")
    theirs = (await other.client.get("/api/v1/devices/acme-pi")).json()
    assert theirs["cordoned"] is False
    assert theirs["rebooting_since"] is None and theirs["desired"]["bundle"] is None
    their_events = (await other.client.get("/api/v1/events")).json()["items"]
    assert not [e for e in their_events if e["type"].startswith(("device.reboot", "device.drain"))]


async def test_alert_rules_and_incidents_stay_inside_the_tenant(
    client: httpx.AsyncClient, other: Other, runtime: Runtime
) -> None:
    await other.client.post(
        "/api/v1/alerts/rules", json={"name": "acme-down", "kind": "device_offline", "for": "1s"}
    )
    hook = {"name": "acme-hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    await other.client.post("/api/v1/alerts/notifiers", json=hook)
    assert (await client.get("/api/v1/alerts/notifiers")).json() == []
    for path in ("/test", "/deliveries"):
        method = client.post if path == "/test" else client.get
        assert (await method(f"/api/v1/alerts/notifiers/acme-hook{path}")).status_code == 404
    assert (await client.delete("/api/v1/alerts/notifiers/acme-hook")).status_code == 404
    theirs_silence = await other.client.post("/api/v1/alerts/silences", json={"for": "1h"})
    assert (await client.get("/api/v1/alerts/silences")).json() == []
    silence_url = f"/api/v1/alerts/silences/{theirs_silence.json()['id']}"
    assert (await client.delete(silence_url)).status_code == 404
    assert (await other.client.delete(silence_url)).status_code == 200
    assert "acme-down" not in [r["name"] for r in (await client.get("/api/v1/alerts/rules")).json()]
    assert (await client.get("/api/v1/alerts/rules/acme-down")).status_code == 404
    assert (await client.delete("/api/v1/alerts/rules/acme-down")).status_code == 404
    await go_offline(runtime)
    theirs = await eventually(lambda: incidents(other.client, state="firing"), "acme's incident")
    assert await incidents(client) == []
    (owed,) = await eventually(
        lambda: deliveries(other.client, "acme-hook"), "acme's notifier owed a notice"
    )
    redeliver = f"/api/v1/alerts/deliveries/{owed['id']}/redeliver"
    assert (await client.post(redeliver)).status_code == 404
    for path in ("", "/ack", "/resolve"):
        method = client.get if not path else client.post
        assert (
            await method(f"/api/v1/alerts/incidents/{theirs[0]['id']}{path}")
        ).status_code == 404
    assert (
        await client.get("/api/v1/alerts/incidents", params={"device": "acme-pi"})
    ).status_code == 404


async def deliveries(client: httpx.AsyncClient, notifier: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = (
        await client.get(f"/api/v1/alerts/notifiers/{notifier}/deliveries")
    ).json()
    return found


async def test_webhooks_stay_inside_the_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    with http_receiver() as theirs, http_receiver() as ours:
        hook = {"name": "acme-events", "url": theirs.url, "events": ["device.*"]}
        assert (await other.client.post("/api/v1/webhooks", json=hook)).status_code == 201
        assert (await client.get("/api/v1/webhooks")).json() == []
        path = "/api/v1/webhooks/acme-events"
        assert (await client.get(path)).status_code == 404
        assert (await client.get(f"{path}/deliveries")).status_code == 404
        assert (await client.post(f"{path}/test")).status_code == 404
        assert (await client.patch(path, json={"enabled": False})).status_code == 404
        assert (await client.delete(path)).status_code == 404
        # The same name in our tenant is our own webhook.
        mine = {"name": "acme-events", "url": ours.url, "events": ["device.*"]}
        assert (await client.post("/api/v1/webhooks", json=mine)).status_code == 201

        await new_device(client, anon, "our-pi")
        labels = {"set": {"site": "x"}}
        await other.client.patch("/api/v1/devices/acme-pi/labels", json=labels)
        await eventually(lambda: posted(theirs, "device.labels_changed"), "acme's event")
        await eventually(lambda: posted(ours, "device.online"), "our device's events")
        assert {r.json()["event"]["device_id"] for r in theirs.requests} == {"acme-pi"}
        assert {r.json()["event"]["device_id"] for r in ours.requests} == {"our-pi"}

        (owed,) = (await other.client.get(f"{path}/deliveries")).json()
        for redeliver in (
            f"{path}/deliveries/{owed['id']}/redeliver",
            f"/api/v1/alerts/deliveries/{owed['id']}/redeliver",
        ):
            assert (await client.post(redeliver)).status_code == 404
        assert (await other.client.get(path)).json()["enabled"] is True


async def posted(receiver: HttpReceiver, type_: str) -> bool:
    return any(r.json()["event"]["type"] == type_ for r in receiver.requests)


async def test_config_stays_inside_the_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, other: Other
) -> None:
    secret = "acme-database-password"
    tenant = "/api/v1/config/tenant"
    theirs = await other.client.patch(tenant, json={"set": {"A": 1}, "secrets": {"DB": secret}})
    assert theirs.status_code == 200, theirs.text
    for layer in ("/api/v1/config/groups/acme-prod", "/api/v1/config/devices/acme-pi"):
        assert (await other.client.patch(layer, json={"set": {"B": 2}})).status_code == 200
    # Our tenant layer is our own: never written, and writing it does not reach their device.
    assert (await client.get(tenant)).json()["version"] == 0
    assert (await client.get(f"{tenant}/history")).json() == {"items": [], "total": 0}
    assert (await client.get(f"{tenant}/versions/1")).status_code == 404
    assert (await client.post(f"{tenant}/rollback", json={"to": 1})).status_code == 404
    generation = (await other.client.get("/api/v1/devices/acme-pi")).json()["desired"]
    assert (await client.patch(tenant, json={"set": {"A": 9}})).status_code == 200
    assert (await other.client.get("/api/v1/devices/acme-pi")).json()["desired"] == generation
    assert (await other.client.get(tenant)).json()["values"] == {"A": 1}

    for layer in ("/api/v1/config/groups/acme-prod", "/api/v1/config/devices/acme-pi"):
        for method, path, body in (
            ("GET", layer, None),
            ("PATCH", layer, {"set": {"X": 1}}),
            ("PUT", layer, {"values": {"X": 1}}),
            ("GET", f"{layer}/history", None),
            ("GET", f"{layer}/versions/1", None),
            ("GET", f"{layer}/diff?from=0&to=1", None),
            ("POST", f"{layer}/rollback", {"to": 1}),
        ):
            response = await client.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert secret not in response.text
    assert (await client.get("/api/v1/devices/acme-pi/config")).status_code == 404
    assert (await client.get("/api/v1/groups/acme-prod/config/status")).status_code == 404
    their_layer = (await other.client.get("/api/v1/config/devices/acme-pi")).json()
    assert (their_layer["version"], their_layer["values"]) == (1, {"B": 2})
    our_events = (await client.get("/api/v1/events", params={"type": "config.changed"})).json()
    assert [e["data"]["version"] for e in our_events["items"]] == [1]
