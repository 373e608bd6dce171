"""Silences and maintenance windows mute notifications; the incidents still open and show."""

from __future__ import annotations

from typing import Any

import httpx

from signalbeam.server.runtime import Runtime
from tests.helpers import eventually, new_device, sync
from tests.server.receivers import http_receiver
from tests.server.test_alerts import go_offline, incidents
from tests.server.test_notifications import NOTIFIERS, delivered, fast_offline_rule
from tests.test_problems import assert_problem

SILENCES = "/api/v1/alerts/silences"


async def test_a_silenced_site_opens_incidents_but_sends_nothing_until_it_ends(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        hook = {"name": "ops", "kind": "webhook", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=hook)).status_code == 201
        await fast_offline_rule(client)
        kiosk = await new_device(client, anon, "kiosk-1", {"site": "oslo"})
        await new_device(client, anon, "gw-1", {"site": "bergen"})
        body = {"selector": "site=oslo", "for": "1h", "comment": "power work in Oslo"}
        silenced = await client.post(SILENCES, json=body)
        assert silenced.status_code == 201, silenced.text
        await go_offline(runtime)

        async def both_firing() -> list[dict[str, Any]] | None:
            found = await incidents(client, state="firing")
            return found if len(found) == 2 else None

        await eventually(both_firing, "both incidents open, silenced or not")
        log = await eventually(lambda: delivered(client, "ops", 1), "bergen's notice sent")
        assert sorted((d["transition"], d["state"]) for d in log) == [
            ("opened:1", "delivered"),
            ("opened:1", "silenced"),
        ]
        assert [r.json()["subject"] for r in receiver.requests] == ["gw-1"]

        ended = await client.delete(f"{SILENCES}/{silenced.json()['id']}")
        assert ended.status_code == 200 and (await client.get(SILENCES)).json() == []
        assert (await sync(anon, kiosk)).status_code == 200  # back: this notice is sent
        await eventually(lambda: delivered(client, "ops", 2), "kiosk-1's return sent")
        assert [(r.json()["subject"], r.json()["transition"]) for r in receiver.requests] == [
            ("gw-1", "opened"),
            ("kiosk-1", "resolved"),
        ]


async def test_a_maintenance_window_mutes_one_rule(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        hook = {"name": "ops", "kind": "webhook", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=hook)).status_code == 201
        await fast_offline_rule(client)
        window = {"window": "Mon-Sun 00:00-24:00 UTC", "rule": "device-offline"}
        assert (await client.post(SILENCES, json=window)).status_code == 201
        await new_device(client, anon, "pi-1")
        await go_offline(runtime)

        async def silenced() -> list[Any] | None:
            log: list[Any] = (await client.get(f"{NOTIFIERS}/ops/deliveries")).json()
            return log or None

        (only,) = await eventually(silenced, "the notice logged")
        assert only["state"] == "silenced" and receiver.requests == []


async def test_bad_silences_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"selector": "site=oslo"}, 422, "for"),
        ({"window": "weekends"}, 422, "window"),
        ({"for": "2h", "until": "2030-01-01T00:00:00Z"}, 422, "until"),
        ({"until": "2030-01-01T00:00:00"}, 422, "until"),
        ({"for": "2h", "rule": "no-such-rule"}, 404, "rule"),
        ({"for": "2h", "selector": "site in (("}, 422, "selector"),
    ]
    for body, status, field in cases:
        assert_problem(await client.post(SILENCES, json=body), status, field)
    assert_problem(await client.delete(f"{SILENCES}/999"), 404, "silence")
