"""Notifications: an offline device reaches a signed webhook and an inbox within seconds, its
return is told too, a storm is grouped, failures are logged and can be redelivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from signalbeam.server.runtime import Runtime
from tests.helpers import eventually, new_device, sync
from tests.server.receivers import HttpReceiver, http_receiver, smtp_server
from tests.server.test_alerts import go_offline
from tests.test_problems import assert_problem

NOTIFIERS = "/api/v1/alerts/notifiers"


async def fast_offline_rule(client: httpx.AsyncClient) -> None:
    response = await client.patch("/api/v1/alerts/rules/device-offline", json={"for": "1s"})
    assert response.status_code == 200, response.text


async def silent_past_the_rule(client: httpx.AsyncClient, devices: int) -> None:
    """Until every device has been silent for longer than the 1 s rule: then the sweep finds
    them all due at once, as when a site loses power (their syncs were spread out)."""
    listed = (await client.get("/api/v1/devices", params={"limit": devices})).json()["items"]
    newest = max(datetime.fromisoformat(d["last_seen_at"]) for d in listed)

    async def past() -> bool:
        return datetime.now(UTC) > newest + timedelta(seconds=1.2)

    await eventually(past, "a second of silence")


async def delivered(client: httpx.AsyncClient, notifier: str, count: int) -> list[Any] | None:
    """The notifier's delivery log once `count` deliveries in it are delivered."""
    log: list[Any] = (await client.get(f"{NOTIFIERS}/{notifier}/deliveries")).json()
    return log if sum(d["state"] == "delivered" for d in log) >= count else None


async def posts(receiver: HttpReceiver, count: int) -> list[Any] | None:
    return [r.json() for r in receiver.requests] if len(receiver.requests) >= count else None


async def test_a_device_offline_and_back_reaches_a_signed_webhook_once_each(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        created = await client.post(
            NOTIFIERS, json={"name": "ops-hook", "kind": "webhook", "url": receiver.url}
        )
        assert created.status_code == 201, created.text
        key = created.json()["signing_key"]
        assert key and created.json()["has_secret"]
        listed = (await client.get(NOTIFIERS)).json()
        assert key not in str(listed), "a signing key is shown once, never listed"

        await fast_offline_rule(client)
        credential = await new_device(client, anon, "pi-7")
        await go_offline(runtime)
        (opened,) = await eventually(lambda: posts(receiver, 1), "the webhook told of pi-7")
        assert (opened["type"], opened["transition"], opened["subject"]) == (
            "incident",
            "opened",
            "pi-7",
        )
        assert opened["title"] == "pi-7: device offline for 1s"
        assert opened["url"].endswith(f"/alerts/{opened['incident_id']}")
        assert receiver.requests[0].signed_by(key)
        assert not receiver.requests[0].signed_by("another key")

        assert (await sync(anon, credential)).status_code == 200
        both = await eventually(lambda: posts(receiver, 2), "the webhook told pi-7 is back")
        assert [b["transition"] for b in both] == ["opened", "resolved"]
        log = await eventually(lambda: delivered(client, "ops-hook", 2), "two deliveries logged")
        assert [(d["transition"], d["state"], d["attempts"]) for d in log] == [
            ("resolved:1", "delivered", 1),
            ("opened:1", "delivered", 1),
        ]
        assert log[0]["log"][0]["status_code"] == 200
        assert len(receiver.requests) == 2, "each transition is sent once"


async def test_an_email_goes_out_over_smtp(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with smtp_server() as mailbox:
        body = {
            "name": "oncall-mail",
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.port,
            "starttls": False,
            "sender": "signalbeam@example.com",
            "to": ["oncall@example.com"],
            "min_severity": "critical",
        }
        assert (await client.post(NOTIFIERS, json=body)).status_code == 201
        await fast_offline_rule(client)
        await new_device(client, anon, "kiosk-3")
        await go_offline(runtime)

        async def mail() -> list[Any] | None:
            return mailbox.messages or None

        (message,) = await eventually(mail, "an email about kiosk-3")
        assert message["Subject"] == "[FIRING] kiosk-3: device offline for 1s (critical)"
        assert message["To"] == "oncall@example.com"
        assert "/alerts/" in message.get_payload()


async def test_a_storm_is_one_grouped_message(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        body = {"name": "ops-hook", "kind": "webhook", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=body)).status_code == 201
        await fast_offline_rule(client)
        for n in range(6):
            await new_device(client, anon, f"site-a-{n}")
        await silent_past_the_rule(client, 6)
        await go_offline(runtime)  # the site loses power: six devices due at once
        (grouped,) = await eventually(lambda: posts(receiver, 1), "one message for the site")
        assert (grouped["type"], grouped["count"], grouped["rule"]) == (
            "incident_group",
            6,
            "device-offline",
        )
        assert sorted(i["subject"] for i in grouped["incidents"]) == [
            f"site-a-{n}" for n in range(6)
        ]
        log = await eventually(lambda: delivered(client, "ops-hook", 6), "six deliveries logged")
        assert {d["log"][0]["grouped"] for d in log} == {6}
        assert len(receiver.requests) == 1


async def test_a_failing_receiver_is_logged_retried_later_and_redelivered(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        receiver.status = 503
        body = {"name": "flaky", "kind": "slack", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=body)).status_code == 201
        await fast_offline_rule(client)
        await new_device(client, anon, "pi-9")
        await go_offline(runtime)

        async def failed() -> list[Any] | None:
            log: list[Any] = (await client.get(f"{NOTIFIERS}/flaky/deliveries")).json()
            return log if log and log[0]["attempts"] else None

        (delivery,) = await eventually(failed, "a failed attempt in the log")
        assert (delivery["state"], delivery["last_result"]) == (
            "pending",
            "HTTP 503: Service Unavailable",
        )
        assert "pi-9" in receiver.requests[0].json()["text"]  # Slack's format
        receiver.status = 200
        again = await client.post(f"/api/v1/alerts/deliveries/{delivery['id']}/redeliver")
        assert again.json()["state"] == "pending"

        async def delivered() -> list[Any] | None:
            log: list[Any] = (await client.get(f"{NOTIFIERS}/flaky/deliveries")).json()
            return log if log[0]["state"] == "delivered" else None

        (done,) = await eventually(delivered, "the redelivery")
        assert [a["status_code"] for a in done["log"]] == [503, 200]


async def test_send_test_says_what_the_receiver_answered(client: httpx.AsyncClient) -> None:
    with http_receiver() as receiver:
        body = {"name": "ops-hook", "kind": "teams", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=body)).status_code == 201
        result = (await client.post(f"{NOTIFIERS}/ops-hook/test")).json()
        assert result == {"delivered": True, "status_code": 200, "detail": "HTTP 200"}
        assert receiver.requests[0].json()["@type"] == "MessageCard"
    dead = {"name": "dead-hook", "kind": "webhook", "url": "http://127.0.0.1:9/nothing"}
    assert (await client.post(NOTIFIERS, json=dead)).status_code == 201
    result = (await client.post(f"{NOTIFIERS}/dead-hook/test")).json()
    assert not result["delivered"] and "ConnectError" in result["detail"]


async def test_bad_notifiers_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"name": "x", "kind": "webhook"}, 422, "url"),
        ({"name": "x", "kind": "webhook", "url": "ftp://files.example.com"}, 422, "url"),
        ({"name": "x", "kind": "pager", "url": "https://a.example.com"}, 422, "kind"),
        ({"name": "x", "kind": "email", "smtp_host": "mail", "sender": "a@b.c"}, 422, "to"),
    ]
    for body, status, field in cases:
        assert_problem(await client.post(NOTIFIERS, json=body), status, field)
    assert_problem(await client.post(f"{NOTIFIERS}/nope/test"), 404, "notifier")
