"""The webhook matcher: follows the event log and owes each webhook the events it subscribes to.

It runs in the delivery worker, under its lease, never in a request or in ingest: those only
append events. The deliveries it queues and how far it has read commit in one transaction, so
a restart neither misses an event nor sends one twice; the unique (webhook, event) key is the
backstop. The delivery worker then signs, sends and retries them like any notification.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.domain.notifications import DeliveryState
from signalbeam.domain.selectors import Selector, parse_selector
from signalbeam.domain.webhooks import EventSeen, body, split, wants
from signalbeam.server.db.models import Delivery, Device, Event, Notifier, WorkerCursor
from signalbeam.server.runtime import Runtime

log = logging.getLogger(__name__)
CURSOR = "webhooks"
BATCH = 1000
ROUNDS = 5  # batches per call at most, so a backlog cannot hold up the deliveries due
# Event ids are taken when a row is inserted, not when it commits: on PostgreSQL a slower
# transaction can commit an older id after a newer one was read. Ids skipped over are looked
# for again for this long (a rolled-back insert leaves a gap that never fills).
LATE_SECONDS = 10.0
MAX_GAPS = 5000


@dataclass(frozen=True)
class Subscribed:
    """An enabled webhook, as the matcher needs it."""

    id: int
    tenant_id: int
    name: str
    patterns: tuple[str, ...]
    selector: Selector | None
    created_at: datetime


class WebhookMatcher:
    """Reads new events in id order and queues a delivery for each webhook that wants one."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cursor: int | None = None
        self.gaps: dict[int, float] = {}  # event id not seen yet -> when it was skipped

    def forget(self) -> None:
        """Start again from the stored cursor (another process led meanwhile)."""
        self.cursor = None
        self.gaps.clear()

    async def run_once(self) -> int:
        """Match what was recorded since the last call; how many deliveries were queued."""
        queued = 0
        try:
            for _ in range(ROUNDS):
                read, owed = await self._round()
                queued += owed
                if read < BATCH:
                    break
        except Exception:
            self.forget()
            log.exception("matching events to webhooks failed; retrying next round")
        return queued

    async def _round(self) -> tuple[int, int]:
        async with self.runtime.sessions() as session, session.begin():
            if self.cursor is None:
                self.cursor = await _load_cursor(session)
            webhooks = await _enabled(session)
            if not webhooks:  # nobody listens: skip ahead without reading the log
                newest = int(await session.scalar(select(func.max(Event.id))) or 0)
                self.gaps.clear()
                # In memory only: every event rings for a round, and a cursor write each
                # would queue behind (and hold up) ingest on SQLite's single writer. After a
                # restart the stored cursor is behind, which costs a read: a webhook made
                # since is never sent events from before it was made.
                self.cursor = max(newest, self.cursor)
                return 0, 0
            fresh = await _events(session, Event.id > self.cursor, limit=BATCH)
            late = await _events(session, Event.id.in_(self.gaps)) if self.gaps else []
            owed = await _owed(session, webhooks, fresh + late)
            if owed:
                await session.execute(insert(Delivery), owed)
            newest = fresh[-1].id if fresh else self.cursor
            await self._advance(session, newest, {e.id for e in fresh}, {e.id for e in late})
        return len(fresh), len(owed)

    async def _advance(
        self, session: AsyncSession, newest: int, fresh: set[int], late: set[int]
    ) -> None:
        assert self.cursor is not None
        clock = time.monotonic()
        if fresh:  # ids between the new ones read that are not there (yet)
            start = max(self.cursor + 1, newest - MAX_GAPS)
            self.gaps.update((i, clock) for i in range(start, newest) if i not in fresh)
        self.gaps = {
            i: at for i, at in self.gaps.items() if i not in late and clock - at < LATE_SECONDS
        }
        if newest > self.cursor:
            row = await session.get(WorkerCursor, CURSOR)
            assert row is not None
            row.last_event_id = newest
        # Should the commit fail, run_once forgets this and reloads the stored cursor.
        self.cursor = newest


async def _load_cursor(session: AsyncSession) -> int:
    """Where the log was read to; a first start begins where the oldest webhook was made (or
    at the end, with none yet): no webhook is sent history, none misses what came since."""
    row = await session.get(WorkerCursor, CURSOR)
    if row is not None:
        return row.last_event_id
    oldest = select(func.min(Notifier.created_at)).where(Notifier.events.is_not(None))
    since = await session.scalar(oldest)
    before = select(func.max(Event.id))
    if since is not None:  # made before this first round: its events are already in the log
        before = before.where(Event.created_at < since)
    newest = int(await session.scalar(before) or 0)
    session.add(WorkerCursor(name=CURSOR, last_event_id=newest))
    return newest


async def _enabled(session: AsyncSession) -> dict[int, list[Subscribed]]:
    """Every tenant's enabled webhooks, by tenant."""
    query = select(Notifier).where(Notifier.events.is_not(None), Notifier.enabled.is_(True))
    found: dict[int, list[Subscribed]] = defaultdict(list)
    for row in await session.scalars(query):
        selector = parse_selector(row.selector) if row.selector else None
        patterns = split(row.events or "")
        found[row.tenant_id].append(
            Subscribed(row.id, row.tenant_id, row.name, patterns, selector, row.created_at)
        )
    return found


@dataclass(frozen=True)
class Recorded:
    """One row of the event log, with the tenant it belongs to."""

    id: int
    tenant_id: int
    device_pk: int | None
    device_id: str | None
    type: str
    actor: str
    message: str
    data: dict[str, Any]
    created_at: datetime


async def _events(session: AsyncSession, where: Any, limit: int | None = None) -> list[Recorded]:
    query = select(
        Event.id,
        Event.tenant_id,
        Event.device_pk,
        Event.device_id,
        Event.type,
        Event.actor,
        Event.message,
        Event.data,
        Event.created_at,
    ).where(where)
    rows = (await session.execute(query.order_by(Event.id).limit(limit))).all()
    return [Recorded(*row) for row in rows]


async def _owed(
    session: AsyncSession, webhooks: dict[int, list[Subscribed]], events: list[Recorded]
) -> list[dict[str, Any]]:
    """The deliveries these events make: one per webhook that wants each."""
    relevant = [e for e in events if e.tenant_id in webhooks]
    devices = await _devices(session, {e.device_pk for e in relevant if e.device_pk is not None})
    now = datetime.now(UTC)
    owed = []
    for event in relevant:
        seen = _seen(event, devices.get(event.device_pk) if event.device_pk else None)
        for webhook in webhooks[event.tenant_id]:
            if event.created_at >= webhook.created_at and wants(
                webhook.patterns, webhook.selector, seen
            ):
                owed.append(_delivery(webhook, event, body(webhook.name, seen), now))
    return owed


async def _devices(session: AsyncSession, pks: set[int]) -> dict[int, tuple[str, dict[str, str]]]:
    """Each device's name and labels, by primary key."""
    if not pks:
        return {}
    query = select(Device.id, Device.name, Device.labels).where(Device.id.in_(pks))
    return {pk: (name, labels) for pk, name, labels in (await session.execute(query)).all()}


def _seen(event: Recorded, device: tuple[str, dict[str, str]] | None) -> EventSeen:
    return EventSeen(
        id=event.id,
        type=event.type,
        actor=event.actor,
        message=event.message,
        data=event.data or {},
        created_at=event.created_at.isoformat(),
        device_id=event.device_id,
        device_name=device[0] if device else None,
        device_labels=device[1] if device else None,
    )


def _delivery(
    webhook: Subscribed, event: Recorded, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": webhook.tenant_id,
        "notifier_id": webhook.id,
        "incident_id": None,
        "event_id": event.id,
        "transition": event.type,
        "notice": payload,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "last_result": None,
        "delivered_at": None,
    }
