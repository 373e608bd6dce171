"""Reading the activity log."""

from __future__ import annotations

from datetime import datetime

from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.domain.model import EventType
from signalbeam.server.db.models import Event
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor

EVENT_TYPES = {t.value for t in EventType}


async def list_events(
    runtime: Runtime,
    actor: Actor,
    *,
    device_id: str | None = None,
    types: list[str] | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events of the tenant, newest first (oldest first when replaying after an id)."""
    # Agents report their own event types, always under "agent.".
    unknown = sorted(t for t in set(types or ()) - EVENT_TYPES if not t.startswith("agent."))
    if unknown:
        raise InvalidInput(
            f"unknown event type {', '.join(unknown)}; known types: {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    async with runtime.unit_of_work(actor) as uow:
        device_pk = None
        if device_id is not None:
            device = await uow.devices.get(device_id)
            if device is None:
                raise NotFound(f'no device "{device_id}" in this tenant', field="device")
            device_pk = device.id
        query = EventQuery(
            device_pk=device_pk,
            types=types or (),
            since=since,
            before_id=before_id,
            after_id=after_id,
            limit=limit,
        )
        return await uow.events.search(query)
