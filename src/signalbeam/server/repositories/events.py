"""The append-only activity log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from signalbeam.server.db.models import Event
from signalbeam.server.repositories.base import TenantRepository


@dataclass(frozen=True)
class EventQuery:
    """Filters for the activity log, newest first unless `after_id` asks for a replay."""

    device_pk: int | None = None
    types: Sequence[str] = ()
    since: datetime | None = None
    before_id: int | None = None
    after_id: int | None = None
    limit: int = 100


class EventRepository(TenantRepository):
    """Events of one tenant; rows are only ever added."""

    def add(self, event: Event) -> Event:
        event.tenant_id = self.tenant_id
        self.session.add(event)
        return event

    async def search(self, query: EventQuery) -> list[Event]:
        statement = select(Event).where(Event.tenant_id == self.tenant_id)
        if query.device_pk is not None:
            statement = statement.where(Event.device_pk == query.device_pk)
        if query.types:
            statement = statement.where(Event.type.in_(query.types))
        if query.since is not None:
            statement = statement.where(Event.created_at >= query.since)
        if query.before_id is not None:
            statement = statement.where(Event.id < query.before_id)
        if query.after_id is not None:
            statement = statement.where(Event.id > query.after_id).order_by(Event.id.asc())
        else:
            statement = statement.order_by(Event.id.desc())
        return list(await self.session.scalars(statement.limit(query.limit)))
