"""The OpenAPI document declares every error as problem+json, and a 405 names what is allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.server.app import create_app
from signalbeam.server.settings import ServerSettings

PROBLEM_JSON = "application/problem+json"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    # Neither the document nor a 405 touches the database, so the app runs without its lifespan.
    data = tmp_path_factory.mktemp("contract")
    return create_app(
        ServerSettings(data_dir=data, database_url=f"sqlite+aiosqlite:///{data}/x.db")
    )


@pytest.fixture
async def bare(contract_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=contract_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_every_error_response_is_declared_as_problem_json(bare: httpx.AsyncClient) -> None:
    document = (await bare.get("/api/openapi.json")).json()
    problem = document["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail"} <= set(problem["required"])
    operations = _operations(document)
    assert len(operations) > 50
    for method, path, operation in operations:
        responses = operation["responses"]
        for status in ("401", "404", "422", "500"):
            assert status in responses, (method, path, status)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                content = response.get("content", {})
                assert list(content) == [PROBLEM_JSON], (method, path, status, content)
                assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
    # The validation rules are in the document, not only in the server.
    devices = {
        p["name"]: p["schema"] for p in document["paths"]["/api/v1/devices"]["get"]["parameters"]
    }
    assert devices["status"]["$ref"] == "#/components/schemas/Presence"
    assert "pattern" in devices["sort"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/users", "GET, POST"),
        ("PATCH", "/api/v1/artifacts/relay.tar.gz", "PUT, DELETE"),
        # The device sync is answered beside FastAPI for POST; other methods still get a 405.
        ("GET", "/api/device/v1/sync", "POST"),
    ],
)
async def test_a_method_not_allowed_names_the_allowed_ones(
    bare: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await bare.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 405
    assert f"{method} is not allowed on {path}; use {allowed}" == body["detail"]
