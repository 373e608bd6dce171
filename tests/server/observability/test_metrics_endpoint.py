"""GET /metrics on the main listener: a token is required, and it shows that token's tenant."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants
from tests.helpers import new_device, sync

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    """The sample named `name` with exactly these labels, if present."""
    return found.get((name, frozenset(labels.items())))


async def test_metrics_need_an_api_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/metrics")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "Authorization: Bearer" in response.json()["detail"]
    spec = (await anon.get("/api/openapi.json")).json()
    assert "/metrics" not in spec["paths"]


async def test_a_scrape_counts_syncs_and_shows_only_its_tenant(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await new_device(client, anon, "kiosk-1")
    await new_device(client, anon, "kiosk-2")
    assert (await sync(anon, first)).status_code == 200
    other = await tenants.create(runtime, "acme", "Acme", "boss")
    acme = {"Authorization": f"Bearer {other.admin_token}"}
    acme_token = (await client.post("/api/v1/enrollment-tokens", json={}, headers=acme)).json()
    enrolled = await anon.post(
        "/api/device/v1/enroll",
        json={"token": acme_token["token"], "device_id": "acme-1", "facts": {"hostname": "a"}},
    )
    assert (await sync(anon, enrolled.json()["credential"])).status_code == 200

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    own = str((await client.get("/api/v1/me")).json()["tenant_id"])
    assert value(found, "signalbeam_devices", tenant_id=own, presence="online") == 2
    assert value(found, "signalbeam_devices", tenant_id=own, presence="offline") == 0
    # Acme's device is Acme's business: no series of another tenant reach this token.
    tenants_seen = {v for _, labels in found for k, v in labels if k == "tenant_id"}
    assert tenants_seen == {own}
    route = {"route": "/api/device/v1/sync", "method": "POST", "status": "2xx"}
    assert value(found, "signalbeam_http_requests_total", **route) == 4
    enroll = {"route": "/api/device/v1/enroll", "method": "POST", "status": "2xx"}
    assert value(found, "signalbeam_http_requests_total", **enroll) == 3
    # kiosk-1's second sync closed a gap; the first syncs had none to close.
    assert value(found, "signalbeam_heartbeat_gap_seconds_count") == 1
    assert value(found, "signalbeam_ingest_queue_depth") == 0
    assert (value(found, "signalbeam_ingest_batch_size_count") or 0) >= 1
