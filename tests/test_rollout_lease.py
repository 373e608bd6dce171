"""The engine lease on both backends, driven with explicit times, and rollouts kept per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from signalbeam.server.db.models import WorkerLease
from signalbeam.server.repositories import leases
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants
from tests.rollout_support import BUNDLE, enroll_fleet, push

# Not the engine's own lease: the app under test runs an engine that holds that one.
NAME = "test-singleton"
TTL = timedelta(seconds=15)
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def _acquire(runtime: Runtime, holder: str, seconds: float) -> bool:
    async with runtime.sessions() as session:
        return await leases.acquire(session, NAME, holder, T0 + timedelta(seconds=seconds), TTL)


async def _lease(runtime: Runtime) -> WorkerLease:
    async with runtime.sessions() as session:
        lease = await session.get(WorkerLease, NAME)
    assert lease is not None
    return lease


async def test_one_holder_at_a_time_and_a_lapsed_lease_is_taken_over(runtime: Runtime) -> None:
    assert await _acquire(runtime, "a", 0)
    assert not await _acquire(runtime, "b", 1)
    assert await _acquire(runtime, "a", 10)  # renewed until 25 s
    assert not await _acquire(runtime, "b", 24)
    assert (await _lease(runtime)).acquired_at == T0  # renewing does not restart the clock

    # "a" stopped renewing (it died): once its lease lapses, "b" takes over, and "a" is out.
    assert await _acquire(runtime, "b", 25.5)
    assert not await _acquire(runtime, "a", 26)
    lease = await _lease(runtime)
    assert (lease.holder, lease.acquired_at) == ("b", T0 + timedelta(seconds=25.5))

    # A clean shutdown gives the lease up at once.
    async with runtime.sessions() as session:
        await leases.release(session, NAME, "b", T0 + timedelta(seconds=27))
        assert await leases.holder_of(session, NAME, T0 + timedelta(seconds=27)) is None
    assert await _acquire(runtime, "a", 27)


async def test_another_tenant_neither_sees_nor_controls_a_rollout(
    app: FastAPI, runtime: Runtime, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await enroll_fleet(client, anon, 1, {"site": "oslo"})
    await push(client, "1.0.0")
    created = await client.post(
        "/api/v1/rollouts", json={"bundle": BUNDLE, "version": "1.0.0", "devices": ["dev-00"]}
    )
    assert created.status_code == 201, created.text
    rollout_id = created.json()["id"]

    other = await tenants.create(runtime, "acme", "Acme", "boss")
    headers = {"Authorization": f"Bearer {other.admin_token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as acme:
        assert (await acme.get("/api/v1/rollouts")).json() == []
        for method, path in (("GET", ""), ("POST", "/pause"), ("POST", "/rollback")):
            response = await acme.request(method, f"/api/v1/rollouts/{rollout_id}{path}")
            assert response.status_code == 404, response.text
        # Its own rollout cannot name the first tenant's device either.
        refused = await acme.post(
            "/api/v1/rollouts", json={"bundle": BUNDLE, "version": "1.0.0", "devices": ["dev-00"]}
        )
        assert refused.status_code == 404
    assert (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()["status"] == "running"
