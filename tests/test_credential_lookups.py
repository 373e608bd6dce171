"""Syncs that miss the device cache share database look-ups, and each still gets its own device."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import event

from signalbeam.server.runtime import Runtime
from tests.helpers import enroll, enrollment_token, sync


async def test_concurrent_cold_syncs_each_get_their_own_desired_state(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await enrollment_token(client)
    ids = [f"pi-{i:02d}" for i in range(24)]
    credentials = {device_id: await enroll(anon, token, device_id) for device_id in ids}
    # Every third device gets its own desired state, named after it, so a mix-up shows.
    for device_id in ids[::3]:
        body = {"devices": [device_id], "spec": {"for": device_id}, "summary": "test"}
        response = await client.post("/api/v1/devices/desired-state", json=body)
        assert response.status_code == 200, response.text
    gone = ids[-1]
    assert (await client.delete(f"/api/v1/devices/{gone}")).status_code == 200
    runtime.devices.evict(*range(1, 10_000))  # as after a restart: nobody is cached

    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "credential_hash IN" in statement:
            lookups.append(statement)

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        answers = await asyncio.gather(
            *(sync(anon, credentials[d], known_generation=0) for d in ids),
            sync(anon, "sbd_never_issued", known_generation=0),
        )
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)

    *devices, stranger = answers
    assert stranger.status_code == 401
    for device_id, answer in zip(ids, devices, strict=True):
        if device_id == gone:
            assert answer.status_code == 401, "a decommissioned device must not sync"
            continue
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if device_id in ids[::3]:
            assert body["status"] == "changed"
            assert body["desired"]["spec"] == {"for": device_id}
        else:
            assert body["status"] == "unchanged"
    # 25 cache misses at once: a handful of shared queries, not one each.
    assert 1 <= len(lookups) <= 5, f"{len(lookups)} look-up queries for 25 concurrent misses"
