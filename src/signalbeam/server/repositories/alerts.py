"""Alert rules, incidents with their timelines, and conditions waiting to fire."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from signalbeam.domain.alerts import CAUSES, IncidentState
from signalbeam.server.db.models import (
    AlertRule,
    AlertSilence,
    AlertWait,
    Event,
    Incident,
    IncidentEntry,
)
from signalbeam.server.repositories.base import TenantRepository

OPEN_STATES = (IncidentState.FIRING.value, IncidentState.ACKNOWLEDGED.value)
# How far back a change may be and still be shown as what preceded an incident.
CAUSE_WINDOW = timedelta(days=1)


class AlertRuleRepository(TenantRepository):
    """Alert rules of one tenant."""

    async def all(self) -> list[AlertRule]:
        query = select(AlertRule).where(AlertRule.tenant_id == self.tenant_id)
        return list(await self.session.scalars(query.order_by(AlertRule.name)))

    async def get(self, name: str) -> AlertRule | None:
        return await self.session.scalar(
            select(AlertRule).where(AlertRule.tenant_id == self.tenant_id, AlertRule.name == name)
        )

    async def get_by_id(self, rule_id: int) -> AlertRule | None:
        return await self.session.scalar(
            select(AlertRule).where(AlertRule.tenant_id == self.tenant_id, AlertRule.id == rule_id)
        )

    async def enabled(self) -> list[AlertRule]:
        query = select(AlertRule).where(
            AlertRule.tenant_id == self.tenant_id, AlertRule.enabled.is_(True)
        )
        return list(await self.session.scalars(query))

    async def add(self, rule: AlertRule) -> AlertRule:
        rule.tenant_id = self.tenant_id
        self.session.add(rule)
        await self.session.flush()
        return rule

    async def delete(self, rule: AlertRule) -> None:
        await self.session.delete(rule)
        await self.session.flush()


class IncidentRepository(TenantRepository):
    """Incidents of one tenant, their timelines and waiting conditions."""

    async def latest(self, rule_id: int, subject: str) -> Incident | None:
        """The newest incident of this rule on this subject (open or not)."""
        query = (
            select(Incident)
            .where(
                Incident.tenant_id == self.tenant_id,
                Incident.rule_id == rule_id,
                Incident.subject == subject,
            )
            .order_by(Incident.id.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def get(self, incident_id: int) -> Incident | None:
        return await self.session.scalar(
            select(Incident).where(Incident.tenant_id == self.tenant_id, Incident.id == incident_id)
        )

    async def page(
        self, states: Sequence[str], device_pk: int | None, limit: int, offset: int
    ) -> tuple[list[Incident], int]:
        """Incidents newest first, in these states (all when empty), of one device or all."""
        where = [Incident.tenant_id == self.tenant_id]
        if states:
            where.append(Incident.state.in_(states))
        if device_pk is not None:
            where.append(Incident.device_pk == device_pk)
        total = await self.session.scalar(select(func.count()).select_from(Incident).where(*where))
        query = select(Incident).where(*where).order_by(Incident.id.desc())
        items = list(await self.session.scalars(query.limit(limit).offset(offset)))
        return items, int(total or 0)

    async def open_count(self, device_pk: int | None = None) -> int:
        """How many incidents are firing or acknowledged (on one device, or anywhere)."""
        where = [Incident.tenant_id == self.tenant_id, Incident.state.in_(OPEN_STATES)]
        if device_pk is not None:
            where.append(Incident.device_pk == device_pk)
        count = await self.session.scalar(select(func.count()).select_from(Incident).where(*where))
        return int(count or 0)

    async def add(self, incident: Incident) -> Incident:
        incident.tenant_id = self.tenant_id
        self.session.add(incident)
        await self.session.flush()
        return incident

    async def note(
        self, incident: Incident, at: datetime, kind: str, actor: str, message: str
    ) -> None:
        """Add a line to the incident's timeline."""
        self.session.add(
            IncidentEntry(incident_id=incident.id, at=at, kind=kind, actor=actor, message=message)
        )
        await self.session.flush()

    async def timeline(self, incident: Incident) -> list[IncidentEntry]:
        query = select(IncidentEntry).where(IncidentEntry.incident_id == incident.id)
        return list(await self.session.scalars(query.order_by(IncidentEntry.id)))

    async def cause(
        self, device_pk: int | None, rollout_id: int | None, before: datetime
    ) -> Event | None:
        """The last change a person (or the engine) made to this device or rollout before now."""
        where = [
            Event.tenant_id == self.tenant_id,
            Event.type.in_(CAUSES),
            Event.created_at <= before,
            Event.created_at >= before - CAUSE_WINDOW,
        ]
        if device_pk is not None:
            where.append(Event.device_pk == device_pk)
        elif rollout_id is not None:
            where += [
                Event.device_pk.is_(None),
                Event.data["rollout_id"].as_integer() == rollout_id,
            ]
        else:
            return None
        query = select(Event).where(*where).order_by(Event.id.desc()).limit(1)
        return await self.session.scalar(query)

    async def waiting(self, rule_id: int, subject: str) -> AlertWait | None:
        return await self.session.scalar(
            select(AlertWait).where(
                AlertWait.tenant_id == self.tenant_id,
                AlertWait.rule_id == rule_id,
                AlertWait.subject == subject,
            )
        )

    async def wait(self, wait: AlertWait) -> None:
        wait.tenant_id = self.tenant_id
        self.session.add(wait)
        await self.session.flush()

    async def stop_waiting(self, rule_id: int, subject: str) -> None:
        await self.session.execute(
            delete(AlertWait).where(
                AlertWait.tenant_id == self.tenant_id,
                AlertWait.rule_id == rule_id,
                AlertWait.subject == subject,
            )
        )


class SilenceRepository(TenantRepository):
    """Silences and maintenance windows of one tenant."""

    async def current(self, now: datetime) -> list[AlertSilence]:
        """Silences not ended yet (those still to start included), soonest end first."""
        query = select(AlertSilence).where(
            AlertSilence.tenant_id == self.tenant_id,
            (AlertSilence.ends_at.is_(None)) | (AlertSilence.ends_at > now),
        )
        return list(await self.session.scalars(query.order_by(AlertSilence.id)))

    async def get(self, silence_id: int) -> AlertSilence | None:
        return await self.session.scalar(
            select(AlertSilence).where(
                AlertSilence.tenant_id == self.tenant_id, AlertSilence.id == silence_id
            )
        )

    async def add(self, silence: AlertSilence) -> AlertSilence:
        silence.tenant_id = self.tenant_id
        self.session.add(silence)
        await self.session.flush()
        return silence
