"""OpenTelemetry traces from a real server process to a real OTLP/HTTP receiver, on each
database: a request span named after its route with service and database spans under it,
a span per rollout engine step, nothing for the device API, and log lines naming the span."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from signalbeam.server.observability.db_spans import span_name
from signalbeam.server.observability.tracing import traces_url, untraced
from signalbeam.server.settings import ServerSettings
from tests.components import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, need, reachable
from tests.helpers import enroll, enrollment_token, eventually, sync
from tests.rollout_support import BUNDLE, enroll_fleet, push
from tests.server.json_server import JsonLogServer, json_log_server
from tests.server.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

# Spans leave in batches every 100 ms rather than every 5 s; a brisk rollout engine.
ENV = {"OTEL_BSP_SCHEDULE_DELAY": "100", "SIGNALBEAM_ROLLOUT_INTERVAL": "PT0.2S"}


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database="postgres"
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """`--database-url` flags for one database per backend, shared by the module."""
    if request.param == "sqlite":
        yield []
        return
    need(reachable(POSTGRES_HOST, POSTGRES_PORT), "PostgreSQL not reachable")
    name = f"signalbeam_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    yield ["--database-url", url]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, module_database: list[str]
) -> Iterator[tuple[JsonLogServer, OtlpReceiver]]:
    """A server tracing to a receiver, logging JSON, for every test of the module."""
    with otlp_receiver() as receiver:
        flags = ["--otlp-endpoint", receiver.endpoint, *module_database]
        data = tmp_path_factory.mktemp("tracing") / "data"
        with json_log_server(data, flags, env=ENV) as server:
            yield server, receiver


@pytest.fixture
async def admin(traced: tuple[JsonLogServer, OtlpReceiver]) -> AsyncIterator[httpx.AsyncClient]:
    server, _ = traced
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def devices(traced: tuple[JsonLogServer, OtlpReceiver]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=traced[0].url, timeout=30) as client:
        yield client


def request_span(receiver: OtlpReceiver, name: str, request_id: str) -> Any:
    """A check for `eventually`: the server span of the request answered with `request_id`."""

    async def check() -> ReceivedSpan | None:
        return next(
            (
                span
                for span in receiver.named(name)
                if span.server and span.attributes.get("signalbeam.request_id") == request_id
            ),
            None,
        )

    return check


def only(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


async def test_a_management_request_is_a_span_tree_down_to_its_statements(
    traced: tuple[JsonLogServer, OtlpReceiver], admin: httpx.AsyncClient
) -> None:
    server, receiver = traced
    group = f"traced-{uuid.uuid4().hex[:8]}"
    response = await admin.post("/api/v1/groups", json={"name": group})
    assert response.status_code == 201, response.text
    request_id = response.headers["x-request-id"]

    root = await eventually(
        request_span(receiver, "POST /api/v1/groups", request_id), "the request's span"
    )
    assert root.parent_id == ""
    assert root.attributes["http.route"] == "/api/v1/groups"
    assert root.attributes["http.response.status_code"] == 201
    assert root.attributes["signalbeam.tenant_id"] == 1
    assert root.resource["service.name"] == "signalbeam-server"
    assert root.resource["service.instance.id"].endswith(f":{server.url.rsplit(':', 1)[1]}")

    # The use case under the request, its INSERT under it: ids linked, one trace.
    created = await eventually(
        lambda: _one(receiver.children(root), "groups.create"), "groups.create"
    )
    insert = await eventually(
        lambda: _one(receiver.children(created), "INSERT groups"), "the INSERT's span"
    )
    assert insert.attributes["db.query.text"].startswith("INSERT INTO groups")
    authenticated = only(receiver.children(root), "users.authenticate")
    assert [span.name.split()[0] for span in receiver.children(authenticated)] == ["SELECT"]
    # Statements carry their placeholders, never the values: the name is nowhere in a span.
    trace = [span for span in receiver.spans if span.trace_id == root.trace_id]
    assert not [span for span in trace if group in str(span.attributes)]
    assert server.admin_token not in str(receiver.spans)
    assert receiver.content_types == {"application/x-protobuf"}

    line = next(r for r in server.records() if r.get("request_id") == request_id)
    assert (line["trace_id"], line["span_id"]) == (root.trace_id, root.span_id)


async def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan | None:
    return next((span for span in spans if span.name == name), None)


async def test_a_rollout_engine_step_is_a_span_with_its_decision(
    traced: tuple[JsonLogServer, OtlpReceiver],
    admin: httpx.AsyncClient,
    devices: httpx.AsyncClient,
) -> None:
    _, receiver = traced
    site = uuid.uuid4().hex[:8]
    fleet = await enroll_fleet(admin, devices, 2, {"site": site})
    await push(admin, "3.0.0")
    body = {"bundle": BUNDLE, "version": "3.0.0", "selector": f"site={site}", "waves": "100%"}
    response = await admin.post("/api/v1/rollouts", json=body)
    assert response.status_code == 201, response.text
    rollout_id = response.json()["id"]

    async def wave_started() -> ReceivedSpan | None:
        steps = [s for s in receiver.named("rollout.step") if _of(s, rollout_id)]
        return next((s for s in steps if s.attributes["signalbeam.wave_started"]), None)

    step = await fleet.until(devices, wave_started, "a step that started the wave")
    assert step.parent_id == ""
    assert step.attributes["signalbeam.wave"] == 0
    assert step.attributes["signalbeam.actions"] >= 2  # assigns both devices
    statements = receiver.children(step)
    assert statements and all(span.attributes["db.system.name"] for span in statements)
    assert receiver.named("rollouts.create")


def _of(span: ReceivedSpan, rollout_id: int) -> bool:
    return span.attributes.get("signalbeam.rollout_id") == rollout_id


async def test_the_device_api_and_background_writes_make_no_spans(
    traced: tuple[JsonLogServer, OtlpReceiver],
    admin: httpx.AsyncClient,
    devices: httpx.AsyncClient,
) -> None:
    _, receiver = traced
    credential = await enroll(devices, await enrollment_token(admin), "untraced-device")
    for _ in range(3):
        assert (await sync(devices, credential)).status_code == 200
    # A later management request's span arriving means the syncs' would have by now.
    response = await admin.get("/api/v1/devices")
    request_id = response.headers["x-request-id"]
    await eventually(request_span(receiver, "GET /api/v1/devices", request_id), "a later span")

    assert not [s for s in receiver.spans if "/api/device/" in str(s.attributes.get("url.path"))]
    # Every trace starts at a request or a rollout step: ingest's commits start none.
    assert not [s.name for s in receiver.spans if not s.parent_id and not (s.server or _step(s))]


def _step(span: ReceivedSpan) -> bool:
    return span.name == "rollout.step"


def test_collector_urls_and_names() -> None:
    assert traces_url("http://otel:4318") == "http://otel:4318/v1/traces"
    assert traces_url("http://otel:4318/") == "http://otel:4318/v1/traces"
    assert traces_url("https://otel/v1/traces") == "https://otel/v1/traces"
    assert span_name("SELECT devices.id FROM devices WHERE x = ?") == "SELECT devices"
    assert span_name('INSERT INTO "events" (a) VALUES ($1)') == "INSERT events"
    assert span_name("COMMIT") == "COMMIT"
    assert untraced({"path": "/api/device/v1/watch"}) and untraced({"path": "/healthz"})
    assert not untraced({"path": "/api/v1/devices"})


def test_an_otlp_endpoint_must_be_a_collector_url(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=re.escape("such as http://127.0.0.1:4318")):
        ServerSettings(data_dir=tmp_path, otlp_endpoint="otel:4318")
    assert ServerSettings(data_dir=tmp_path).otlp_endpoint is None
