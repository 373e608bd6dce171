"""Health endpoints and the published API description."""

from __future__ import annotations

import httpx


async def test_health_and_readiness(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json()["status"] == "ok"
    assert (await anon.get("/readyz")).json() == {"status": "ready"}


async def test_openapi_describes_both_apis(anon: httpx.AsyncClient) -> None:
    spec = (await anon.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/device/v1/enroll",
        "/api/device/v1/sync",
        "/api/device/v1/watch",
        "/api/device/v1/telemetry",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}/metrics",
        "/api/v1/groups",
        "/api/v1/events/stream",
        "/api/v1/enrollment-tokens",
    ):
        assert path in paths, path
    assert "EnrollRequest" in spec["components"]["schemas"]
