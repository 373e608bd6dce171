"""Reading the activity log."""

from __future__ import annotations

from datetime import datetime

from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.domain.model import EventType
from signalbeam.server.db.models import Event
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork

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
    async with runtime.unit_of_work(actor) as uow:
        device_pk = await _check_filters(uow, device_id, types)
        query = EventQuery(
            device_pk=device_pk,
            types=types or (),
            since=since,
            before_id=before_id,
            after_id=after_id,
            limit=limit,
        )
        return await uow.events.search(query)


async def _check_filters(
    uow: UnitOfWork, device_id: str | None, types: list[str] | None
) -> int | None:
    # Agents report their own event types, always under "agent.".
    unknown = sorted(t for t in set(types or ()) - EVENT_TYPES if not t.startswith("agent."))
    if unknown:
        raise InvalidInput(
            f"unknown event type {', '.join(unknown)}; known types: {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    if device_id is None:
        return None
    device = await uow.devices.get(device_id)
    if device is None:
        raise NotFound(f'no device "{device_id}" in this tenant', field="device")
    return device.id


async def check_filters(
    runtime: Runtime, actor: Actor, device_id: str | None, types: list[str] | None
) -> None:
    """Refuse unknown event types and devices before a live stream starts."""
    async with runtime.unit_of_work(actor) as uow:
        await _check_filters(uow, device_id, types)
