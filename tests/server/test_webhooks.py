"""Webhooks: a device that enrolls reaches a signed webhook once, filtered by event type and
selector; a failing receiver is retried and can be redelivered; deliveries survive a restart;
the signing key is shown once; bad input names the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from signalbeam.domain.notifications import Storms
from signalbeam.server.app import create_app
from signalbeam.server.runtime import Runtime
from signalbeam.server.settings import ServerSettings
from signalbeam.server.workers.deliveries import deliver_due
from tests.helpers import eventually, new_device
from tests.server.receivers import HttpReceiver, http_receiver
from tests.server.test_sessions import user_headers
from tests.test_problems import assert_problem

WEBHOOKS = "/api/v1/webhooks"


async def posts(receiver: HttpReceiver, count: int) -> list[Any] | None:
    return [r.json() for r in receiver.requests] if len(receiver.requests) >= count else None


async def log_of(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await client.get(f"{WEBHOOKS}/{name}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def attempted(client: httpx.AsyncClient, name: str, count: int) -> list[Any] | None:
    """The delivery log once its newest delivery has been tried `count` times.

    Both the delivery's own count and its attempt rows must show it: on PostgreSQL the log
    reads them in two statements, each seeing what was committed when it ran, so one answer
    may show the attempt row before the delivery row it was committed with.
    """
    log = await log_of(client, name)
    done = log and len(log[0]["log"]) >= count and log[0]["attempts"] >= count
    return log if done else None


async def retry_round(runtime: Runtime) -> int:
    """One delivery round as it runs once the first retry is due (10 s after a failure)."""
    later = datetime.now(UTC) + timedelta(seconds=11)
    async with httpx.AsyncClient() as http:
        return await deliver_due(runtime, http, Storms(), later)


async def test_an_enrolling_device_reaches_a_signed_webhook_filtered_by_type_and_selector(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    with http_receiver() as receiver:
        body = {
            "name": "oslo-devices",
            "url": receiver.url,
            "events": ["device.registered", "rollout.*"],
            "selector": "site=oslo",
        }
        created = await client.post(WEBHOOKS, json=body)
        assert created.status_code == 201, created.text
        key = created.json()["secret"]
        assert key and created.json()["has_secret"]
        for shown in (await client.get(WEBHOOKS), await client.get(f"{WEBHOOKS}/oslo-devices")):
            assert shown.status_code == 200 and key not in shown.text

        # Bergen's registration comes first: once Oslo's is in, Bergen's was matched (and left).
        await new_device(client, anon, "pi-bergen", {"site": "bergen"})
        await new_device(client, anon, "pi-oslo", {"site": "oslo"})
        (sent,) = await eventually(lambda: posts(receiver, 1), "the webhook told of pi-oslo")
        assert sent["type"] == "event" and sent["subscription"] == "oslo-devices"
        event = sent["event"]
        assert (event["type"], event["device_id"], event["device_name"]) == (
            "device.registered",
            "pi-oslo",
            "pi-oslo",
        )
        assert "tenant_id" not in str(sent) and event["id"] > 0
        request = receiver.requests[0]
        assert request.signed_by(key) and not request.signed_by("another key")
        assert request.headers["x-signalbeam-event"] == "device.registered"

        (logged,) = await eventually(lambda: attempted(client, "oslo-devices", 1), "the log")
        assert (logged["event_id"], logged["event_type"], logged["state"]) == (
            event["id"],
            "device.registered",
            "delivered",
        )
        assert request.headers["x-signalbeam-delivery"] == str(logged["id"])
        # Neither Bergen's registration nor either device.online was sent.
        assert len(receiver.requests) == 1


async def test_a_failing_receiver_is_retried_and_can_be_redelivered(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        receiver.status = 500
        body = {"name": "flaky", "url": receiver.url, "events": ["device.registered"]}
        assert (await client.post(WEBHOOKS, json=body)).status_code == 201
        await new_device(client, anon, "pi-9")
        (failed,) = await eventually(lambda: attempted(client, "flaky", 1), "a failed attempt")
        assert (failed["state"], failed["attempts"], failed["last_result"]) == (
            "pending",
            1,
            "HTTP 500: Internal Server Error",
        )

        receiver.status = 200
        assert await retry_round(runtime) == 1
        (retried,) = await log_of(client, "flaky")
        assert [a["status_code"] for a in retried["log"]] == [500, 200]
        assert retried["state"] == "delivered"
        first, second = receiver.requests
        assert first.body == second.body, "a retry sends the same event"
        assert first.headers["x-signalbeam-delivery"] == second.headers["x-signalbeam-delivery"]

        again = await client.post(f"{WEBHOOKS}/flaky/deliveries/{retried['id']}/redeliver")
        assert again.status_code == 200 and again.json()["state"] == "pending"
        await eventually(lambda: posts(receiver, 3), "the redelivery")
        assert receiver.requests[2].body == first.body
        missing = await client.post(f"{WEBHOOKS}/flaky/deliveries/999999/redeliver")
        assert_problem(missing, 404, "delivery")


@dataclass
class Life:
    """One life of the server process: its runtime, an admin client and a device client."""

    runtime: Runtime
    client: httpx.AsyncClient
    anon: httpx.AsyncClient


@asynccontextmanager
async def running(settings: ServerSettings) -> AsyncIterator[Life]:
    """The server on these settings, started and then shut down."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        token = (settings.data_dir / "admin-token").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c,
            httpx.AsyncClient(transport=transport, base_url="http://test") as anon,
        ):
            yield Life(app.state.runtime, c, anon)


async def test_deliveries_survive_a_restart_and_no_event_is_sent_twice(
    settings: ServerSettings,
) -> None:
    with http_receiver() as receiver:
        receiver.status = 503
        async with running(settings) as first:
            body = {"name": "ops", "url": receiver.url, "events": ["device.registered"]}
            key = (await first.client.post(WEBHOOKS, json=body)).json()["secret"]
            await new_device(first.client, first.anon, "pi-before")
            await eventually(lambda: attempted(first.client, "ops", 1), "a failed attempt")
        receiver.status = 200
        async with running(settings) as second:
            (owed,) = await log_of(second.client, "ops")
            assert owed["state"] == "pending", "the failed delivery is still owed"
            await retry_round(second.runtime)
            await eventually(lambda: posts(receiver, 2), "the retry after the restart")
            await new_device(second.client, second.anon, "pi-after")
            await eventually(lambda: posts(receiver, 3), "pi-after's registration")
            log = await eventually(lambda: attempted(second.client, "ops", 1), "the log")
            assert [d["state"] for d in log] == ["delivered", "delivered"], log
        devices = [r.json()["event"]["device_id"] for r in receiver.requests]
        assert devices == ["pi-before", "pi-before", "pi-after"]  # failed, retried, new
        assert all(r.signed_by(key) for r in receiver.requests)


async def test_send_test_says_what_the_receiver_answered(client: httpx.AsyncClient) -> None:
    with http_receiver() as receiver:
        body = {"name": "ops", "url": receiver.url, "events": ["*"], "secret": "s" * 32}
        created = await client.post(WEBHOOKS, json=body)
        assert created.json()["secret"] is None, "a key you gave is not shown back"
        result = (await client.post(f"{WEBHOOKS}/ops/test")).json()
        assert result == {"delivered": True, "status_code": 200, "detail": "HTTP 200"}
        # Subscribed to "*", it may also have been sent its own creation (webhook.changed).
        tests = [r for r in receiver.requests if r.json()["event"]["type"] == "webhook.test"]
        assert len(tests) == 1, [r.json()["event"]["type"] for r in receiver.requests]
        assert tests[0].signed_by("s" * 32)
    dead = {"name": "dead", "url": "http://127.0.0.1:9/nothing", "events": ["device.*"]}
    assert (await client.post(WEBHOOKS, json=dead)).status_code == 201
    result = (await client.post(f"{WEBHOOKS}/dead/test")).json()
    assert not result["delivered"] and "ConnectError" in result["detail"]
    (logged,) = await log_of(client, "dead")
    assert (logged["event_type"], logged["state"]) == ("webhook.test", "dead")


async def test_update_changes_what_is_sent_and_the_key_stays_write_only(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "ops", "url": "https://hooks.example.com/a", "events": ["device.*"]}
    assert (await client.post(WEBHOOKS, json=body)).status_code == 201
    change = {"events": ["rollout.completed"], "selector": "env=prod", "enabled": False}
    updated = await client.patch(f"{WEBHOOKS}/ops", json=change)
    assert updated.status_code == 200, updated.text
    shown = updated.json()
    assert (shown["events"], shown["selector"], shown["enabled"]) == (
        ["rollout.completed"],
        "env=prod",
        False,
    )
    rotated = await client.patch(f"{WEBHOOKS}/ops", json={"secret": "k" * 20, "selector": ""})
    assert rotated.json()["selector"] is None and "k" * 20 not in rotated.text
    log = (await client.get("/api/v1/events", params={"type": "webhook.changed"})).json()
    assert [e["message"] for e in log["items"]][:2] == ["webhook ops updated"] * 2
    assert "k" * 20 not in str(log) and "hooks.example.com" not in str(log)
    assert (await client.delete(f"{WEBHOOKS}/ops")).status_code == 204
    assert_problem(await client.get(f"{WEBHOOKS}/ops"), 404, "webhook")


async def test_bad_webhooks_are_refused_naming_the_field(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    good = {"name": "ops", "url": "https://hooks.example.com/a", "events": ["device.*"]}
    cases = [
        ({**good, "url": "ftp://files.example.com"}, "url"),
        ({**good, "events": []}, "events"),
        ({**good, "events": ["device.nope"]}, "events"),
        ({**good, "selector": "env="}, "selector"),
        ({**good, "name": "Bad Name"}, "name"),
        ({**good, "secret": "short"}, "secret"),
    ]
    for body, field in cases:
        assert_problem(await client.post(WEBHOOKS, json=body), 422, field)
    unknown = (await client.post(WEBHOOKS, json={**good, "events": ["device.nope"]})).json()
    assert "device.registered" in unknown["detail"] and "device.*" in unknown["detail"]

    assert (await client.post(WEBHOOKS, json=good)).status_code == 201
    assert_problem(await client.post(WEBHOOKS, json=good), 409, "name")
    notifier = {"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/b"}
    assert_problem(await client.post("/api/v1/alerts/notifiers", json=notifier), 409, "name")
    assert (await client.get("/api/v1/alerts/notifiers")).json() == [], "no webhooks in there"
    assert_problem(await client.patch(f"{WEBHOOKS}/ops", json={"events": ["x.y"]}), 422, "events")
    assert_problem(await client.patch(f"{WEBHOOKS}/ops", json={"url": None}), 422, "url")
    assert_problem(await client.post(f"{WEBHOOKS}/nope/test"), 404, "webhook")

    viewer = await user_headers(client, "vera", "viewer")
    assert (await client.get(WEBHOOKS, headers=viewer)).status_code == 200
    assert (await client.get(f"{WEBHOOKS}/ops/deliveries", headers=viewer)).status_code == 200
    for method, path, sent in (
        ("POST", WEBHOOKS, {**good, "name": "mine"}),
        ("PATCH", f"{WEBHOOKS}/ops", {"enabled": False}),
        ("DELETE", f"{WEBHOOKS}/ops", None),
        ("POST", f"{WEBHOOKS}/ops/test", None),
    ):
        refused = await client.request(method, path, json=sent, headers=viewer)
        assert_problem(refused, 403)
