"""Metric rules at ingest: a heartbeat that takes a metric over a rule's threshold, or back to
normal, is written as an event in the heartbeat's own transaction, and the alerts worker turns
those into incidents. Only crossings are written, never every sample, and the check is a few
comparisons per heartbeat against rules held in memory (reloaded every few seconds).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.domain.alerts import (
    METRICS,
    Change,
    IncidentState,
    Readings,
    RuleKind,
    RuleSpec,
    crossing,
)
from signalbeam.domain.model import EventType
from signalbeam.protocol.device_v1 import Heartbeat
from signalbeam.server.db.models import AlertRule, AlertWait, Incident
from signalbeam.server.repositories.events import EventRepository
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.alert_rules import spec_of
from signalbeam.server.services.bus import EventPayload
from signalbeam.server.services.context import SYSTEM_ACTOR, payload, system_actor
from signalbeam.server.services.devices import DeviceFilter, matching_ids
from signalbeam.server.workers.ingest import SyncRecord

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Watched:
    """One enabled metric rule and the devices it covers (None: every device)."""

    rule_id: int
    spec: RuleSpec
    devices: frozenset[str] | None


@dataclass(frozen=True)
class Crossing:
    record: SyncRecord
    rule: Watched
    change: Change
    value: float


def readings(beat: Heartbeat) -> Readings:
    """A heartbeat's numbers as metric rules read them."""
    return Readings(
        cpu=beat.cpu_percent,
        memory=beat.memory_percent,
        disks=tuple((d.mount, d.percent) for d in beat.disks),
        load=beat.load1,
        temperature=beat.temperature_celsius,
    )


def message(rule: RuleSpec, change: Change, value: float) -> str:
    assert rule.metric is not None
    unit = METRICS[rule.metric][2]
    if change is Change.BEGAN:
        return f"{rule.describe()} ({value:g}{unit}; rule {rule.name})"
    return f"{rule.metric} back to {value:g}{unit} (rule {rule.name})"


class MetricWatch:
    """Each process's view of the metric rules, and of which devices are over them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._rules: dict[int, list[Watched]] = {}
        self._above: set[tuple[int, str]] = set()

    def crossings(self, records: list[SyncRecord]) -> list[Crossing]:
        """The crossings these heartbeats make; remembered, so each is reported once."""
        found = []
        for record in records:
            for rule in self._rules.get(record.tenant_id, ()):
                if rule.devices is not None and record.device_id not in rule.devices:
                    continue
                key = (rule.rule_id, record.device_id)
                now = readings(record.heartbeat)
                change = crossing(rule.spec, now, key in self._above)
                if change is None:
                    continue
                (self._above.add if change is Change.BEGAN else self._above.discard)(key)
                assert rule.spec.metric is not None
                value = now.value(rule.spec.metric, rule.spec.mount)
                assert value is not None
                found.append(Crossing(record, rule, change, value))
        return found

    async def record(
        self, session: AsyncSession, records: list[SyncRecord]
    ) -> list[tuple[int, EventPayload]]:
        """Write the batch's crossings as events in its transaction; their payloads."""
        by_rule: dict[tuple[int, int, Change], list[Crossing]] = defaultdict(list)
        for found in self.crossings(records):
            by_rule[(found.record.tenant_id, found.rule.rule_id, found.change)].append(found)
        published: list[tuple[int, EventPayload]] = []
        for (tenant_id, _, change), crossings in by_rule.items():
            published += await _write(session, tenant_id, change, crossings)
        return published

    async def run(self) -> None:
        """Reload the rules every few seconds, for ever."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("could not reload metric rules; retrying in %ss", REFRESH_SECONDS)
            await asyncio.sleep(REFRESH_SECONDS)

    async def refresh(self) -> None:
        """The enabled metric rules, their scopes, and what is over them already."""
        async with self.runtime.sessions() as session:
            query = select(AlertRule).where(
                AlertRule.kind == RuleKind.METRIC_ABOVE.value, AlertRule.enabled.is_(True)
            )
            rules = list(await session.scalars(query))
            ids = [rule.id for rule in rules]
            waiting = await session.execute(
                select(AlertWait.rule_id, AlertWait.subject).where(AlertWait.rule_id.in_(ids))
            )
            open_states = (IncidentState.FIRING.value, IncidentState.ACKNOWLEDGED.value)
            firing = await session.execute(
                select(Incident.rule_id, Incident.subject).where(
                    Incident.rule_id.in_(ids), Incident.state.in_(open_states)
                )
            )
            known = {(r, s) for r, s in waiting.all()} | {(r, s) for r, s in firing.all()}
        watched: dict[int, list[Watched]] = defaultdict(list)
        for rule in rules:
            watched[rule.tenant_id].append(await self._watched(rule))
        self._rules = dict(watched)
        # Never forget a crossing here that the alerts worker has not read yet: only an
        # ENDED crossing takes a device off the list (or its rule going away).
        self._above = {key for key in self._above | known if key[0] in set(ids)}

    async def _watched(self, rule: AlertRule) -> Watched:
        spec = spec_of(rule)
        if spec.selector is None and spec.group is None:
            return Watched(rule.id, spec, None)
        async with self.runtime.unit_of_work(system_actor(rule.tenant_id)) as uow:
            scope = DeviceFilter(selector=spec.selector, group=spec.group)
            try:
                ids = await matching_ids(uow, scope)
            except Exception:  # its group was deleted: it covers nothing
                ids = []
        return Watched(rule.id, spec, frozenset(ids))


async def _write(
    session: AsyncSession, tenant_id: int, change: Change, crossings: list[Crossing]
) -> list[tuple[int, EventPayload]]:
    type_ = (
        EventType.DEVICE_METRIC_ABOVE if change is Change.BEGAN else EventType.DEVICE_METRIC_NORMAL
    )
    rows: list[dict[str, Any]] = []
    for found in crossings:
        spec = found.rule.spec
        rows.append(
            {
                "device_pk": found.record.device_pk,
                "device_id": found.record.device_id,
                "type": type_.value,
                "actor": SYSTEM_ACTOR,
                "message": message(spec, change, found.value),
                "data": {
                    "rule_id": found.rule.rule_id,
                    "rule": spec.name,
                    "metric": spec.metric,
                    "value": found.value,
                    "threshold": spec.threshold,
                },
                "created_at": found.record.seen_at,
            }
        )
    ids = await EventRepository(session, tenant_id).add_many_for_devices(rows)
    return [
        (
            tenant_id,
            payload(
                ids[row["device_pk"]],
                type_.value,
                row["device_id"],
                SYSTEM_ACTOR,
                row["message"],
                row["data"],
                row["created_at"],
            ),
        )
        for row in rows
    ]
