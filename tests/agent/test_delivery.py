"""Delivering the outbox over real HTTP: in order, once, and one bad item cannot block the rest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from signalbeam.agent.client import DeviceClient
from signalbeam.agent.outbox import Outbox
from signalbeam.agent.telemetry import Flusher
from signalbeam.agent.wire import Heartbeat
from signalbeam.protocol.device_v1 import TelemetryBatch
from tests.agent.hostile import problem, serve

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Collector:
    """A telemetry endpoint that stores like the real one and refuses one poisoned event."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.samples: list[float] = []
        self.requests = 0

    def app(self) -> Starlette:
        async def telemetry(request: Request) -> Response:
            self.requests += 1
            batch = TelemetryBatch.model_validate_json(await request.body())
            if any(e.message == "poison" for e in batch.events):
                return problem(422, "events[0].data: value too large to store")
            self.events += [e.message for e in batch.events]
            self.samples += [s.heartbeat.cpu_percent or 0.0 for s in batch.samples]
            ack: dict[str, Any] = {
                "samples_through": max((s.seq for s in batch.samples), default=0),
                "events_through": max((e.seq for e in batch.events), default=0),
            }
            return JSONResponse(ack)

        return Starlette(routes=[Route("/api/device/v1/telemetry", telemetry, methods=["POST"])])


async def test_flush_delivers_in_order_and_isolates_a_refused_item(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    for n, message in enumerate(["first", "second", "poison", "third"]):
        outbox.add_event("agent.test", message, {}, T0 + timedelta(seconds=n))
    for n in range(7):
        outbox.add_sample(Heartbeat(cpu_percent=float(n), sampled_at=T0 + timedelta(seconds=n)))
    server = Collector()
    with serve(server.app()) as url:
        client = DeviceClient(url, "sbd_test")
        try:
            with caplog.at_level(logging.WARNING):
                result = await Flusher(client, outbox, batch_size=3).flush()
        finally:
            await client.aclose()
    assert result.error is None
    assert server.events == ["first", "second", "third"]
    assert server.samples == [float(n) for n in range(7)], "every sample once, in order"
    assert outbox.batch(500) is None
    refused = [r.getMessage() for r in caplog.records if "refused an outbox item" in r.getMessage()]
    assert len(refused) == 1 and "value too large to store" in refused[0]


async def test_flush_keeps_everything_when_the_server_is_unreachable(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.add_event("agent.test", "kept", {}, T0)
    client = DeviceClient("http://127.0.0.1:9", "sbd_test")
    try:
        result = await Flusher(client, outbox).flush()
    finally:
        await client.aclose()
    assert result.error is not None and "connection refused" in result.error
    assert outbox.counts().events == 1
