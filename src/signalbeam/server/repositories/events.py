"""The append-only activity log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from signalbeam.server.db.models import Event
from signalbeam.server.repositories.base import TenantRepository

# Rows per INSERT: 8 columns each, well under SQLite's limit on bound parameters.
BULK_ROWS = 1000


@dataclass(frozen=True)
class EventQuery:
    """Filters for the activity log, newest first unless `after_id` asks for a replay."""

    device_pk: int | None = None
    types: Sequence[str] = ()
    since: datetime | None = None
    before_id: int | None = None
    after_id: int | None = None
    session: str | None = None  # events that carry this session id in their data
    limit: int = 100


class EventRepository(TenantRepository):
    """Events of one tenant; rows are only ever added."""

    async def add_many_for_devices(self, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
        """Insert one plain event row per device in bulk: device pk -> event id.

        Keyed by device rather than by position: asking for RETURNING in parameter order
        makes SQLAlchemy insert row by row on SQLite, four times slower.
        """
        ids: dict[int, int] = {}
        for start in range(0, len(rows), BULK_ROWS):
            chunk = [
                {**row, "tenant_id": self.tenant_id} for row in rows[start : start + BULK_ROWS]
            ]
            statement = insert(Event).returning(Event.device_pk, Event.id)
            for device_pk, event_id in await self.session.execute(statement, chunk):
                if device_pk is not None:
                    ids[device_pk] = event_id
        return ids

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
        if query.session is not None:
            statement = statement.where(Event.data["session"].as_string() == query.session)
        if query.since is not None:
            statement = statement.where(Event.created_at >= query.since)
        if query.before_id is not None:
            statement = statement.where(Event.id < query.before_id)
        if query.after_id is not None:
            statement = statement.where(Event.id > query.after_id).order_by(Event.id.asc())
        else:
            statement = statement.order_by(Event.id.desc())
        return list(await self.session.scalars(statement.limit(query.limit)))
