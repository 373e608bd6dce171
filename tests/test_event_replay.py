"""Resuming an event stream replays everything missed, however much that is."""

from __future__ import annotations

import httpx
import pytest

from signalbeam.domain.model import Role
from signalbeam.server.api.management.v1 import events
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor


async def test_replay_pages_through_everything_missed(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "REPLAY_PAGE", 3)
    for i in range(8):
        assert (await client.post("/api/v1/groups", json={"name": f"g{i}"})).status_code == 201
    items = (await client.get("/api/v1/events", params={"type": "group.created"})).json()["items"]
    first = min(e["id"] for e in items)
    me = (await client.get("/api/v1/me")).json()
    actor = Actor(me["tenant_id"], "user", "admin", Role.ADMIN, None)
    replayed = [p["message"] async for p in events._replay(runtime, actor, first)]
    assert replayed == [f"group g{i} created (static members)" for i in range(1, 8)]
