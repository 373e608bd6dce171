"""The activity log, as pages and as a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.management.v1.field_rules import EVENT_TYPE_PATTERN, MAX_ID, Timestamp
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import events as event_service
from signalbeam.server.services.bus import EventPayload
from signalbeam.server.services.context import Actor, event_payload

router = APIRouter(prefix="/events", tags=["events"])
# `check_filters` refuses an unknown type naming the known ones; the schema lists the same.
EventTypeName = Annotated[
    str, Field(max_length=200, json_schema_extra={"pattern": EVENT_TYPE_PATTERN})
]
KEEPALIVE_SECONDS = 15.0
REPLAY_PAGE = 1000


@router.get("", response_model=schemas.EventList)
async def list_events(
    runtime: RuntimeDep,
    actor: CurrentActor,
    device: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[list[EventTypeName] | None, Query()] = None,
    since: Timestamp | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.EventList:
    """Events, newest first; page back with `before_id`."""
    rows = await event_service.list_events(
        runtime, actor, device_id=device, types=type, since=since, before_id=before_id, limit=limit
    )
    next_before = rows[-1].id if len(rows) == limit else None
    return schemas.EventList(items=[convert.event(r) for r in rows], next_before_id=next_before)


def _frame(payload: EventPayload) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        payload["id"],
        payload["type"].encode(),
        orjson.dumps(payload),
    )


def _wanted(payload: EventPayload, device: str | None, types: list[str] | None) -> bool:
    return (device is None or payload["device_id"] == device) and (
        not types or payload["type"] in types
    )


async def _replay(runtime: Runtime, actor: Actor, after: int) -> AsyncIterator[EventPayload]:
    """Every event after `after`, oldest first, page by page however many there are."""
    while True:
        page = await event_service.list_events(runtime, actor, after_id=after, limit=REPLAY_PAGE)
        for row in page:
            yield event_payload(row)
        if len(page) < REPLAY_PAGE:
            return
        after = page[-1].id


async def _stream(
    runtime: Runtime, actor: Actor, after: int | None, device: str | None, types: list[str] | None
) -> AsyncIterator[bytes]:
    # Subscribe before replaying so nothing committed in between is missed; ids dedupe.
    subscription = runtime.bus.subscribe(actor.tenant_id)
    try:
        last = after or 0
        yield b": connected\n\n"
        if after is not None:
            async for payload in _replay(runtime, actor, after):
                last = payload["id"]
                if _wanted(payload, device, types):
                    yield _frame(payload)
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    message = await subscription.get()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if message is None:
                # Closed, or cut off for falling behind: the client reconnects with
                # Last-Event-ID and replays the rest from the database.
                return
            if message["id"] > last and _wanted(message, device, types):
                last = message["id"]
                yield _frame(message)
    finally:
        subscription.close()


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    runtime: RuntimeDep,
    actor: CurrentActor,
    device: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[list[EventTypeName] | None, Query()] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="replay events after this id")
    ] = None,
) -> StreamingResponse:
    """Live events as Server-Sent Events; reconnect with Last-Event-ID to miss nothing."""
    start = last_event_id if last_event_id is not None else after
    await event_service.check_filters(runtime, actor, device, type)
    return StreamingResponse(
        _stream(runtime, actor, start, device, type),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
