"""The alerts worker: follows the event log and turns the conditions it shows into incidents.

Evaluation is driven by what the server already records (presence changes, agent reports,
rollout steps), so its cost follows the events, not the size of the fleet. Conditions that must
last a while (offline for 5 min) wait in `alert_waits` until they are due. One server process
runs it, under a lease; where it has read to is stored, so a restart loses nothing and
alerts on nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from signalbeam.domain.alerts import (
    WATCHED_EVENTS,
    Change,
    Current,
    IncidentState,
    RuleSpec,
    Signal,
    Step,
    due,
    fire,
    signals,
    step,
)
from signalbeam.domain.model import Role
from signalbeam.server.db.models import (
    AlertRule,
    AlertWait,
    Device,
    Event,
    Incident,
    WorkerCursor,
)
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import incidents
from signalbeam.server.services.alert_rules import Scope, scope_of, spec_of
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.workers.leadership import Leadership

log = logging.getLogger(__name__)
LEASE = "alerts"
BATCH = 500
# Event ids are taken when a row is inserted, not when it commits: on PostgreSQL a slower
# transaction can commit an older id after a newer one was read. Each poll reads again from
# where the cursor stood this long ago and skips what it has handled.
OVERLAP_SECONDS = 10.0


def alerts_actor(tenant_id: int) -> Actor:
    """Who the activity log names for what the alerts worker does."""
    return Actor(tenant_id=tenant_id, kind="system", name="alerts", role=Role.ADMIN)


@dataclass(frozen=True)
class Seen:
    """An event the worker reads: only the fields alerts need."""

    id: int
    tenant_id: int
    device_pk: int | None
    device_id: str | None
    type: str
    message: str
    data: dict[str, object]
    created_at: datetime


class AlertsWorker:
    """Reads new events about once a second and fires what is due, while holding its lease."""

    def __init__(self, runtime: Runtime, interval: float = 1.0) -> None:
        self.runtime = runtime
        self.interval = interval
        self.leadership = Leadership(
            runtime, LEASE, "alerts worker", runtime.settings.rollout_lease
        )
        self.cursor: int | None = None
        self._history: deque[tuple[float, int]] = deque()
        self._handled: set[int] = set()

    async def run(self) -> None:
        try:
            while True:
                await self.run_once()
                await asyncio.sleep(self.interval)
        finally:
            await self.leadership.release()

    async def run_once(self, now: datetime | None = None) -> int:
        """One poll: handle new events, then due conditions; how many events were handled."""
        now = now or datetime.now(UTC)
        try:
            if not await self.leadership.hold(now):
                self.cursor = None  # another process leads: start from the stored cursor later
                return 0
            handled = await self._follow(now)
            await fire_due(self.runtime, now)
            return handled
        except Exception:
            log.exception("alert evaluation failed; retrying in %.1fs", self.interval)
            return 0

    async def _follow(self, now: datetime) -> int:
        if self.cursor is None:
            self.cursor = await _load_cursor(self.runtime)
        events = await _read(self.runtime, self._floor(), WATCHED_EVENTS)
        fresh = [event for event in events if event.id not in self._handled]
        by_tenant: dict[int, list[Seen]] = defaultdict(list)
        for event in fresh:
            by_tenant[event.tenant_id].append(event)
        for tenant_id, seen in by_tenant.items():
            await evaluate(self.runtime, tenant_id, seen, now)
        self._handled.update(event.id for event in fresh)
        newest = max((event.id for event in events), default=self.cursor)
        if newest > self.cursor:
            self.cursor = newest
            await _save_cursor(self.runtime, newest)
        self._remember(self.cursor)
        return len(fresh)

    def _floor(self) -> int:
        assert self.cursor is not None
        return self._history[0][1] if self._history else self.cursor

    def _remember(self, cursor: int) -> None:
        clock = time.monotonic()
        self._history.append((clock, cursor))
        while self._history and self._history[0][0] < clock - OVERLAP_SECONDS:
            self._history.popleft()
        floor = self._floor()
        self._handled = {event_id for event_id in self._handled if event_id > floor}


async def _load_cursor(runtime: Runtime) -> int:
    """Where the log was read to; a first start begins at the end (no alerts on history)."""
    async with runtime.sessions() as session:
        row = await session.get(WorkerCursor, LEASE)
        if row is not None:
            return row.last_event_id
        newest = int(await session.scalar(select(func.max(Event.id))) or 0)
        session.add(WorkerCursor(name=LEASE, last_event_id=newest))
        await session.commit()
        return newest


async def _save_cursor(runtime: Runtime, event_id: int) -> None:
    async with runtime.sessions() as session:
        row = await session.get(WorkerCursor, LEASE)
        assert row is not None
        row.last_event_id = max(row.last_event_id, event_id)
        await session.commit()


async def _read(runtime: Runtime, after: int, types: Sequence[str]) -> list[Seen]:
    query = (
        select(
            Event.id,
            Event.tenant_id,
            Event.device_pk,
            Event.device_id,
            Event.type,
            Event.message,
            Event.data,
            Event.created_at,
        )
        .where(Event.id > after, Event.type.in_(types))
        .order_by(Event.id)
        .limit(BATCH)
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    return [Seen(*row) for row in rows]


@dataclass
class Tenant:
    """One tenant's rules and devices, loaded once for a batch of its events."""

    uow: UnitOfWork
    rules: list[tuple[AlertRule, RuleSpec, Scope]]
    devices: dict[int, Device]


async def evaluate(runtime: Runtime, tenant_id: int, events: list[Seen], now: datetime) -> None:
    """Apply one tenant's events to its enabled rules, in one transaction."""
    async with runtime.unit_of_work(alerts_actor(tenant_id)) as uow:
        rules = []
        for rule in await uow.alert_rules.enabled():
            spec = spec_of(rule)
            rules.append((rule, spec, await scope_of(uow, spec)))
        if not rules:
            return
        ids = sorted({e.device_id for e in events if e.device_id is not None})
        devices = {d.id: d for d in await uow.devices.get_many(ids)} if ids else {}
        tenant = Tenant(uow, rules, devices)
        for event in events:
            found = signals(
                event.type, event.device_id, dict(event.data), event.message, event.created_at
            )
            for signal in found:
                await _apply(tenant, event, signal, now)
        await uow.commit()


async def _apply(tenant: Tenant, event: Seen, signal: Signal, now: datetime) -> None:
    device = tenant.devices.get(event.device_pk) if event.device_pk is not None else None
    for rule, spec, scope in tenant.rules:
        if spec.kind is not signal.kind or signal.rule_id not in (None, rule.id):
            continue
        if not spec.kind.per_rollout and (device is None or not scope.covers(device)):
            continue
        await _decide(tenant.uow, rule, spec, signal, device, now)


async def _decide(
    uow: UnitOfWork,
    rule: AlertRule,
    spec: RuleSpec,
    signal: Signal,
    device: Device | None,
    now: datetime,
) -> None:
    incident = await uow.incidents.latest(rule.id, signal.subject)
    waiting = await uow.incidents.waiting(rule.id, signal.subject) is not None
    current = Current(
        state=IncidentState(incident.state) if incident else None,
        resolved_at=incident.resolved_at if incident else None,
        waiting=waiting,
    )
    opening = incidents.Opening(rule, spec, signal.subject, device, signal.message)
    match step(spec, current, signal.change, now):
        case Step.WAIT:
            fires_at = due(spec, signal.since)
            if fires_at > now:
                wait = AlertWait(
                    rule_id=rule.id,
                    subject=signal.subject,
                    device_pk=device.id if device else None,
                    since=signal.since,
                    due_at=fires_at,
                    message=signal.message,
                )
                await uow.incidents.wait(wait)
            else:  # it has lasted long enough already (the device was silent for longer)
                await _fire(uow, opening, incident, fire(current, now), now)
        case Step.OPEN | Step.REOPEN as chosen:
            await _fire(uow, opening, incident, chosen, now)
        case Step.RESOLVE:
            assert incident is not None
            await incidents.clear(uow, incident, rule.name, device, signal.message, now)
        case Step.CANCEL:
            await uow.incidents.stop_waiting(rule.id, signal.subject)
        case Step.NOTHING:
            pass
    if signal.change is Change.ENDED and waiting:
        await uow.incidents.stop_waiting(rule.id, signal.subject)


async def _fire(
    uow: UnitOfWork,
    opening: incidents.Opening,
    incident: Incident | None,
    chosen: Step,
    now: datetime,
) -> None:
    if chosen is Step.REOPEN and incident is not None:
        await incidents.reopen(uow, incident, opening, now)
    else:
        await incidents.open_incident(uow, opening, now)


async def fire_due(runtime: Runtime, now: datetime) -> int:
    """Open the incidents whose waiting conditions have lasted long enough; how many."""
    async with runtime.sessions() as session:
        query = select(AlertWait).where(AlertWait.due_at <= now).order_by(AlertWait.due_at)
        waits = list(await session.scalars(query.limit(BATCH)))
    by_tenant: dict[int, list[AlertWait]] = defaultdict(list)
    for wait in waits:
        by_tenant[wait.tenant_id].append(wait)
    for tenant_id, due_now in by_tenant.items():
        await _fire_tenant(runtime, tenant_id, due_now, now)
    return len(waits)


async def _fire_tenant(
    runtime: Runtime, tenant_id: int, waits: list[AlertWait], now: datetime
) -> None:
    async with runtime.unit_of_work(alerts_actor(tenant_id)) as uow:
        for wait in waits:
            await uow.incidents.stop_waiting(wait.rule_id, wait.subject)
            rule = await uow.alert_rules.get_by_id(wait.rule_id)
            if rule is None or not rule.enabled:
                continue
            incident = await uow.incidents.latest(rule.id, wait.subject)
            state = IncidentState(incident.state) if incident else None
            if state in (IncidentState.FIRING, IncidentState.ACKNOWLEDGED):
                continue
            device = await _device(uow, wait.device_pk)
            current = Current(state=state, resolved_at=incident.resolved_at if incident else None)
            opening = incidents.Opening(rule, spec_of(rule), wait.subject, device, wait.message)
            await _fire(uow, opening, incident, fire(current, now), now)
        await uow.commit()


async def _device(uow: UnitOfWork, pk: int | None) -> Device | None:
    device = await uow.session.get(Device, pk) if pk is not None else None
    return device if device is not None and device.tenant_id == uow.actor.tenant_id else None


async def run_alerts(runtime: Runtime) -> None:
    """The worker `create_app` starts."""
    await AlertsWorker(runtime).run()
