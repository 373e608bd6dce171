"""A server from before failure logs still takes this agent's reports, failures included.

The older server here is the current device API's own validation minus the two fields it
did not know yet (strict about unknown fields, as every server was), served over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, create_model
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from signalbeam.agent.client import DeviceClient, Rejected
from signalbeam.agent.wire import ReportedState, SyncRequest
from signalbeam.protocol import device_v1
from tests.agent.hostile import problem, serve

NEW_FIELDS = {"failed_unit", "failure_log"}


def _without_new_fields(model: type[BaseModel], **replaced: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if name not in NEW_FIELDS
    }
    fields.update(replaced)
    older: type[BaseModel] = create_model(model.__name__, __base__=device_v1.WireModel, **fields)
    return older


OldReported = _without_new_fields(device_v1.ReportedState)
OldSync = _without_new_fields(
    device_v1.SyncRequest, reported=(OldReported, OldReported.model_validate({}))
)


class OlderServer:
    """What the older server received, and whether it took it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], int]] = []

    async def sync(self, request: Request) -> Response:
        body = json.loads(await request.body())
        try:
            OldSync.model_validate(body)
        except ValidationError as err:
            self.received.append((body, 422))
            return problem(422, str(err.errors()[0]["loc"]) + ": " + err.errors()[0]["msg"])
        self.received.append((body, 200))
        return JSONResponse(
            {
                "status": "unchanged",
                "generation": 0,
                "desired": None,
                "hints": {"sync_interval_seconds": 1},
                "server_time": datetime.now(UTC).isoformat(),
            }
        )


@pytest.fixture
def older() -> Iterator[tuple[OlderServer, str]]:
    server = OlderServer()
    with serve(
        Starlette(routes=[Route("/api/device/v1/sync", server.sync, methods=["POST"])])
    ) as url:
        yield server, url


FAILED = ReportedState(
    generation=2,
    status="failed",
    reason="relay@1.2.0 failed: app relay-controller exited with code 3 while starting",
    failed_unit="relay-controller",
    failure_log=["relay 1.2.0 listening on 9000", "relay 1.2.0: flag is gone, giving up"],
)


async def test_an_older_server_gets_the_reason_without_the_log(
    older: tuple[OlderServer, str],
) -> None:
    server, url = older
    client = DeviceClient(url, "sbd_test")
    try:
        await client.sync(SyncRequest(reported=ReportedState(generation=1, status="running")))
        await client.sync(SyncRequest(reported=FAILED))
        await client.sync(SyncRequest(reported=FAILED))
    finally:
        await client.aclose()
    statuses = [status for _body, status in server.received]
    # The healthy report is taken as it is; the failure is refused once with its log and
    # then sent without it, and from then on only without it.
    assert statuses == [200, 422, 200, 200]
    taken = [body["reported"] for body, status in server.received if status == 200]
    assert all(NEW_FIELDS.isdisjoint(report) for report in taken)
    assert taken[1]["reason"] == taken[2]["reason"] == FAILED.reason
    assert server.received[1][0]["reported"]["failure_log"] == FAILED.failure_log


async def test_a_refusal_for_another_reason_is_not_hidden(
    older: tuple[OlderServer, str],
) -> None:
    server, url = older
    client = DeviceClient(url, "sbd_test")
    try:
        with pytest.raises(Rejected) as refused:
            await client.sync(SyncRequest(reported=ReportedState(status="x" * 40)))
    finally:
        await client.aclose()
    assert refused.value.status == 422 and "status" in refused.value.detail
    assert len(server.received) == 1, "nothing to leave out, so no second try"
