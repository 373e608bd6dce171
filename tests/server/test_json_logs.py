"""`signalbeam server --log-format json`: one JSON object per stderr line, carrying the request
id the response named and the device being served, and never a secret.

One SQLite server (debug level, so the device API's request lines show) serves the module:
the log format does not depend on the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import enroll, enrollment_token, eventually, sync
from tests.server.json_server import JsonLogServer, json_log_server

REQUESTS_LOGGER = "signalbeam.server.requests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonLogServer]:
    with json_log_server(
        tmp_path_factory.mktemp("json-logs") / "data", ["--log-level", "debug"]
    ) as live:
        yield live


@pytest.fixture
async def admin(server: JsonLogServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def anon(server: JsonLogServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def request_line(server: JsonLogServer, request_id: str) -> Any:
    """A check for `eventually`: the request line logged for `request_id`."""

    async def check() -> dict[str, Any] | None:
        return next(
            (
                record
                for record in server.records()
                if record.get("request_id") == request_id and record["logger"] == REQUESTS_LOGGER
            ),
            None,
        )

    return check


async def test_a_request_line_carries_the_request_id_the_response_named(
    server: JsonLogServer, admin: httpx.AsyncClient
) -> None:
    response = await admin.get("/api/v1/groups")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]

    line = await eventually(request_line(server, request_id), "the request line")
    assert line["level"] == "info"
    assert line["message"].startswith("GET /api/v1/groups 200 in ")
    assert (line["route"], line["method"], line["status"]) == ("/api/v1/groups", "GET", 200)
    assert line["time"].endswith("+00:00")
    assert "device_id" not in line
    # Tracing is off here: no line claims a trace.
    assert not [record for record in server.records() if "trace_id" in record]


async def test_a_sane_client_request_id_is_kept_and_a_secret_looking_one_replaced(
    server: JsonLogServer, admin: httpx.AsyncClient
) -> None:
    kept = await admin.get("/api/v1/groups", headers={"X-Request-ID": "ci-run-42.7"})
    assert kept.headers["x-request-id"] == "ci-run-42.7"
    await eventually(request_line(server, "ci-run-42.7"), "the client's request id in the log")

    for offered in (server.admin_token, "two words", "x" * 65):
        response = await admin.get("/api/v1/groups", headers={"X-Request-ID": offered})
        assert response.headers["x-request-id"] != offered
        await eventually(request_line(server, response.headers["x-request-id"]), "a new id")


async def test_a_device_request_line_carries_the_device_id(
    server: JsonLogServer, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    credential = await enroll(anon, await enrollment_token(admin), "json-logger")
    response = await sync(anon, credential)
    assert response.status_code == 200

    line = await eventually(request_line(server, response.headers["x-request-id"]), "sync line")
    assert line["device_id"] == "json-logger"
    assert (line["route"], line["level"]) == ("/api/device/v1/sync", "debug")


async def test_no_line_shows_a_token_credential_or_password(
    server: JsonLogServer, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    # As tests/test_live_server.py checks of the text log, with more secrets in play.
    token = await enrollment_token(admin)
    credential = await enroll(anon, token, "json-secretive")
    assert (await sync(anon, credential)).status_code == 200
    refused = await sync(anon, credential + "x")
    assert refused.status_code == 401
    password = "correct horse json staple"
    changed = await admin.put("/api/v1/users/admin/password", json={"password": password})
    assert changed.status_code == 204, changed.text
    await eventually(request_line(server, refused.headers["x-request-id"]), "the refusal's line")

    lines = list(server.log)
    for secret in (token, credential, credential + "x", password, server.admin_token):
        assert not [line for line in lines if secret in line]
    assert not [line for line in lines if "Traceback" in line]
    assert not [record for record in server.records() if record["logger"] == "aiosqlite"]
