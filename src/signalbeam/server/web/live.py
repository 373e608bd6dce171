"""The dashboard's live channel: a Server-Sent Events stream of the tenant's committed events.

Pages only need to know that something changed (and for which device) to refresh the parts
they show, so each frame carries the event's id, type and device id, never its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.bus import EventPayload
from signalbeam.server.web.deps import CurrentUser, WebRoute

router = APIRouter(route_class=WebRoute)
KEEPALIVE_SECONDS = 15.0
# Reconnect quickly after a server restart; browsers default to about three seconds.
RETRY_MILLISECONDS = 2000


def _frame(payload: EventPayload) -> bytes:
    summary = {k: payload.get(k) for k in ("id", "type", "device_id")}
    return b"id: %d\ndata: %s\n\n" % (payload["id"], orjson.dumps(summary))


async def _stream(runtime: Runtime, tenant_id: int) -> AsyncIterator[bytes]:
    subscription = runtime.bus.subscribe(tenant_id)
    try:
        yield b"retry: %d\n: connected\n\n" % RETRY_MILLISECONDS
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    message = await subscription.get()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if message is None:
                # Closed at shutdown or cut off for falling behind: the browser reconnects,
                # and the page refreshes what it shows, so nothing stays stale.
                return
            yield _frame(message)
    finally:
        subscription.close()


@router.get("/live", include_in_schema=False)
async def live(runtime: RuntimeDep, user: CurrentUser) -> StreamingResponse:
    """Live events for the signed-in user's tenant."""
    return StreamingResponse(
        _stream(runtime, user.actor.tenant_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
