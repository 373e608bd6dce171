"""Delivery speed: an event committed here goes out at once, not at the worker's next poll; a
receiver that does not answer delays nothing but its own deliveries; results are written in
chunks, each delivery once.

The delivery worker's poll is an hour in this module, so whatever arrives was sent because the
doorbell rang, and the stalled receiver's send is given more time than any test takes.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete, select

from signalbeam.server.app import create_app
from signalbeam.server.db.models import Event, WorkerCursor
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import notifications
from signalbeam.server.settings import ServerSettings
from signalbeam.server.workers import deliveries, webhooks
from tests.helpers import eventually
from tests.server.receivers import HttpReceiver, http_receiver

WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
async def app(settings: ServerSettings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FastAPI]:
    """The app with an hour between the delivery worker's polls and sends that wait minutes."""
    monkeypatch.setattr(deliveries, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(notifications, "SEND_SECONDS", 600.0)
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@dataclass
class StalledReceiver:
    """An HTTP receiver that takes each request and answers only once released."""

    url: str
    requests: list[bytes] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def stalled_receiver() -> Iterator[StalledReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = StalledReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.requests.append(self.rfile.read(int(self.headers["content-length"])))
            receiver.release.wait()
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


async def subscribe(client: httpx.AsyncClient, name: str, url: str) -> None:
    body = {"name": name, "url": url, "events": ["group.created"]}
    assert (await client.post(WEBHOOKS, json=body)).status_code == 201


async def new_group(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.post("/api/v1/groups", json={"name": name})).status_code == 201


async def log_of(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await client.get(f"{WEBHOOKS}/{name}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def delivered(client: httpx.AsyncClient, name: str, count: int) -> Any:
    """A check: the webhook's log once `count` of its deliveries are delivered."""

    async def check() -> list[dict[str, Any]] | None:
        log = await log_of(client, name)
        return log if sum(d["state"] == "delivered" for d in log) >= count else None

    return check


def received(receiver: HttpReceiver | StalledReceiver, count: int) -> Any:
    async def check() -> bool:
        return len(receiver.requests) >= count

    return check


def groups_named(receiver: HttpReceiver) -> list[str]:
    return [r.json()["event"]["data"]["group"] for r in receiver.requests]


async def first_round_done(runtime: Runtime) -> None:
    """Until the delivery worker's first round (at start) has read the event log."""

    async def stored() -> bool:
        async with runtime.sessions() as session:
            return await session.get(WorkerCursor, webhooks.CURSOR) is not None

    await eventually(stored, "the delivery worker's first round")


async def test_an_event_reaches_a_webhook_without_waiting_for_the_poll(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await first_round_done(runtime)  # what follows can only be sent by a ring, not that round
    with http_receiver() as receiver:
        await subscribe(client, "ops", receiver.url)
        await new_group(client, "kiosks")
        await eventually(received(receiver, 1), "the webhook told of the new group")
        (logged,) = await eventually(delivered(client, "ops", 1), "the delivery logged")
        assert logged["attempts"] == 1 and groups_named(receiver) == ["kiosks"]


async def test_a_receiver_that_does_not_answer_delays_only_its_own_deliveries(
    client: httpx.AsyncClient,
) -> None:
    with stalled_receiver() as stalled, http_receiver() as healthy:
        await subscribe(client, "stalled", stalled.url)  # first: its deliveries come first
        await subscribe(client, "healthy", healthy.url)
        await new_group(client, "first")
        await eventually(received(stalled, 1), "the stalled receiver taking the first event")
        await eventually(delivered(client, "healthy", 1), "the first event delivered to healthy")
        # Queued while the stalled send still waits: it goes out (and is logged) regardless.
        await new_group(client, "second")
        await eventually(delivered(client, "healthy", 2), "the second event delivered to healthy")
        assert groups_named(healthy) == ["first", "second"]

        owed = await log_of(client, "stalled")
        assert [(d["state"], d["attempts"]) for d in owed] == [("pending", 0)] * 2
        assert len(stalled.requests) == 1, "a notifier still sending is not sent more"

        stalled.release.set()
        await eventually(delivered(client, "stalled", 2), "both delivered once it answers")
        assert len(stalled.requests) == 2 and len(healthy.requests) == 2, "each sent once"


async def test_a_burst_is_recorded_in_chunks_each_delivery_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries, "RECORD_EVERY", 4)
    with http_receiver() as receiver:
        await subscribe(client, "ops", receiver.url)
        names = [f"site-{n}" for n in range(15)]
        for name in names:
            await new_group(client, name)
        log = await eventually(delivered(client, "ops", len(names)), "every event delivered")
        assert sorted(groups_named(receiver)) == sorted(names), "each sent once"
        assert all(len(d["log"]) == 1 and d["log"][0]["status_code"] == 200 for d in log)


async def test_a_first_start_reads_from_the_oldest_webhook_on(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A webhook made before the matcher's very first round (just after a first start) is
    still sent what came after it, and nothing from before it."""
    await new_group(client, "before")
    await subscribe(client, "ops", "http://127.0.0.1:9/nothing")
    await new_group(client, "after")
    async with runtime.sessions() as session, session.begin():
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
        before, made, after = (
            next(e.id for e in events if e.type == kind and e.message.startswith(text))
            for kind, text in (
                ("group.created", "group before"),
                ("webhook.changed", "webhook ops"),
                ("group.created", "group after"),
            )
        )
        await session.execute(delete(WorkerCursor).where(WorkerCursor.name == webhooks.CURSOR))
        assert before <= await webhooks._load_cursor(session) < made < after
        await session.rollback()
