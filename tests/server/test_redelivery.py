"""Redeliver rings the delivery worker: a webhook's or a notifier's delivery sent again goes out
at once, not at the worker's next poll.

The worker's poll is an hour in this module, so a redelivery that arrives was sent because the
doorbell rang.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select

from signalbeam.server.app import create_app
from signalbeam.server.db.models import Event, WorkerCursor
from signalbeam.server.runtime import Runtime
from signalbeam.server.settings import ServerSettings
from signalbeam.server.workers import deliveries, webhooks
from tests.helpers import eventually
from tests.server.receivers import HttpReceiver, http_receiver

WEBHOOKS = "/api/v1/webhooks"
NOTIFIERS = "/api/v1/alerts/notifiers"


@pytest.fixture
async def app(settings: ServerSettings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    """The app with an hour between the delivery worker's polls."""
    monkeypatch.setattr(deliveries, "POLL_SECONDS", 3600.0)
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def caught_up(runtime: Runtime) -> None:
    """Until the delivery worker has matched every event so far (their rings are spent), so
    only a new ring can start another round before the poll."""

    async def matched() -> bool:
        async with runtime.sessions() as session:
            newest = int(await session.scalar(select(func.max(Event.id))) or 0)
            cursor = await session.get(WorkerCursor, webhooks.CURSOR)
            return cursor is not None and cursor.last_event_id >= newest

    await eventually(matched, "the delivery worker reading every event so far")


def heard(receiver: HttpReceiver, count: int) -> Any:
    async def check() -> bool:
        return len(receiver.requests) >= count

    return check


async def test_a_webhook_redelivery_goes_out_without_waiting_for_the_poll(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        body = {"name": "ops", "url": receiver.url, "events": ["group.created"]}
        assert (await client.post(WEBHOOKS, json=body)).status_code == 201
        assert (await client.post(f"{WEBHOOKS}/ops/test")).json()["delivered"]
        (sent,) = (await client.get(f"{WEBHOOKS}/ops/deliveries")).json()
        await caught_up(runtime)

        again = await client.post(f"{WEBHOOKS}/ops/deliveries/{sent['id']}/redeliver")
        assert again.status_code == 200, again.text
        await eventually(heard(receiver, 2), "the redelivery reaching the receiver")
        first, second = receiver.requests
        assert second.body == first.body and second.json()["event"]["type"] == "webhook.test"


async def test_a_notifier_redelivery_goes_out_without_waiting_for_the_poll(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    with http_receiver() as receiver:
        # A webhook keeps the worker's read position stored, which `caught_up` watches.
        body = {"name": "feed", "url": receiver.url, "events": ["group.created"]}
        assert (await client.post(WEBHOOKS, json=body)).status_code == 201
        notifier = {"name": "ops", "kind": "webhook", "url": receiver.url}
        assert (await client.post(NOTIFIERS, json=notifier)).status_code == 201
        assert (await client.post(f"{NOTIFIERS}/ops/test")).json()["delivered"]
        (sent,) = (await client.get(f"{NOTIFIERS}/ops/deliveries")).json()
        await caught_up(runtime)

        again = await client.post(f"/api/v1/alerts/deliveries/{sent['id']}/redeliver")
        assert again.status_code == 200, again.text
        await eventually(heard(receiver, 2), "the redelivery reaching the receiver")
        assert receiver.requests[1].headers["x-signalbeam-delivery"] == str(sent["id"])
