"""Incidents: opened, fired again, acknowledged and resolved, each step on the timeline and in
the activity log (where notifications and outgoing webhooks pick them up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.alerts import IncidentState, RuleSpec, title
from signalbeam.domain.errors import Conflict, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.server.db.models import AlertRule, Device, Event, Incident, IncidentEntry
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.notifications import queue_notices

STATES = tuple(state.value for state in IncidentState)


@dataclass(frozen=True)
class Opening:
    """What fired: the rule, its subject and, for a device rule, the device."""

    rule: AlertRule
    spec: RuleSpec
    subject: str
    device: Device | None
    message: str


async def open_incident(uow: UnitOfWork, opening: Opening, now: datetime) -> Incident:
    """A new firing incident, with the change that preceded it when there is one."""
    device = opening.device
    rollout_id = _rollout_id(opening.subject)
    cause = await uow.incidents.cause(device.id if device else None, rollout_id, now)
    incident = await uow.incidents.add(
        Incident(
            rule_id=opening.rule.id,
            subject=opening.subject,
            device_pk=device.id if device else None,
            device_id=device.device_id if device else None,
            state=IncidentState.FIRING.value,
            severity=opening.spec.severity.value,
            title=title(opening.spec, opening.subject),
            opened_at=now,
            last_fired_at=now,
            fired_count=1,
            cause=_cause(cause),
        )
    )
    await uow.incidents.note(incident, now, "fired", str(uow.actor), opening.message)
    message = f"firing: {incident.title}"
    await _announce(uow, EventType.INCIDENT_OPENED, incident, device, message, opening.rule.name)
    return incident


async def reopen(uow: UnitOfWork, incident: Incident, opening: Opening, now: datetime) -> None:
    """The condition came back soon after it cleared: the same incident fires again."""
    incident.state = IncidentState.FIRING.value
    incident.resolved_at = None
    incident.resolved_by = None
    incident.acknowledged_at = None
    incident.acknowledged_by = None
    incident.last_fired_at = now
    incident.fired_count += 1
    await uow.incidents.note(incident, now, "fired again", str(uow.actor), opening.message)
    message = f"firing again ({incident.fired_count} times): {incident.title}"
    rule = opening.rule.name
    await _announce(uow, EventType.INCIDENT_REOPENED, incident, opening.device, message, rule)


async def clear(
    uow: UnitOfWork, incident: Incident, rule: str, device: Device | None, why: str, now: datetime
) -> None:
    """The condition ended: the incident resolves itself."""
    _resolve(incident, str(uow.actor), now)
    await uow.incidents.note(incident, now, "resolved", str(uow.actor), why)
    message = f"resolved: {incident.title}"
    await _announce(uow, EventType.INCIDENT_RESOLVED, incident, device, message, rule)


def _resolve(incident: Incident, by: str, now: datetime) -> None:
    incident.state = IncidentState.RESOLVED.value
    incident.resolved_at = now
    incident.resolved_by = by


def _rollout_id(subject: str) -> int | None:
    head, _, rest = subject.partition("/")
    return int(rest) if head == "rollout" and rest.isdigit() else None


def _cause(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "event_id": event.id,
        "type": event.type,
        "message": event.message,
        "actor": event.actor,
        "at": event.created_at.isoformat(),
    }


# The notice each event type sends: its transition.
_TRANSITIONS = {
    EventType.INCIDENT_OPENED: "opened",
    EventType.INCIDENT_REOPENED: "reopened",
    EventType.INCIDENT_ACKNOWLEDGED: "acknowledged",
    EventType.INCIDENT_RESOLVED: "resolved",
}


async def _announce(
    uow: UnitOfWork,
    type_: EventType,
    incident: Incident,
    device: Device | None,
    message: str,
    rule: str,
) -> None:
    """Record the change in the activity log and owe the notifiers it reaches a notice."""
    data = {
        "incident_id": incident.id,
        "rule_id": incident.rule_id,
        "severity": incident.severity,
        "subject": incident.subject,
        "state": incident.state,
    }
    uow.record(type_, message, device=device, data=data)
    await queue_notices(uow, incident, rule, _TRANSITIONS[type_], device)


@dataclass(frozen=True)
class IncidentView:
    """An incident with its rule's name, its timeline and its device."""

    incident: Incident
    rule: str
    timeline: list[IncidentEntry]


async def list_incidents(
    runtime: Runtime,
    actor: Actor,
    states: list[str],
    device_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[IncidentView], int]:
    """Incidents newest first, optionally only in some states or of one device."""
    async with runtime.unit_of_work(actor) as uow:
        device_pk = None
        if device_id is not None:
            device_pk = (await _device(uow, device_id)).id
        items, total = await uow.incidents.page(states, device_pk, limit, offset)
        names = {rule.id: rule.name for rule in await uow.alert_rules.all()}
    return [IncidentView(i, names.get(i.rule_id, "?"), []) for i in items], total


async def show(runtime: Runtime, actor: Actor, incident_id: int) -> IncidentView:
    """One incident with its whole timeline."""
    async with runtime.unit_of_work(actor) as uow:
        incident = await _get(uow, incident_id)
        rule = await uow.alert_rules.get_by_id(incident.rule_id)
        timeline = await uow.incidents.timeline(incident)
    return IncidentView(incident, rule.name if rule else "?", timeline)


async def acknowledge(runtime: Runtime, actor: Actor, incident_id: int) -> IncidentView:
    """Someone is on it: the incident stays open, its notifications stop repeating."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        incident = await _get(uow, incident_id)
        if incident.state != IncidentState.FIRING.value:
            raise Conflict(
                f"incident {incident_id} is {incident.state}; only a firing one can be acknowledged",
                field="incident",
            )
        incident.state = IncidentState.ACKNOWLEDGED.value
        incident.acknowledged_at = now
        incident.acknowledged_by = str(actor)
        await uow.incidents.note(incident, now, "acknowledged", str(actor), f"by {actor.name}")
        device = await _device_of(uow, incident)
        message = f"acknowledged by {actor.name}: {incident.title}"
        rule = await _rule_name(uow, incident)
        await _announce(uow, EventType.INCIDENT_ACKNOWLEDGED, incident, device, message, rule)
        await uow.commit()
    return await show(runtime, actor, incident_id)


async def resolve(runtime: Runtime, actor: Actor, incident_id: int) -> IncidentView:
    """Close an incident by hand (its condition may still hold: it opens again if it fires)."""
    actor.require(Role.OPERATOR)
    now = datetime.now(UTC)
    async with runtime.unit_of_work(actor) as uow:
        incident = await _get(uow, incident_id)
        if incident.state == IncidentState.RESOLVED.value:
            raise Conflict(f"incident {incident_id} is already resolved", field="incident")
        _resolve(incident, str(actor), now)
        await uow.incidents.note(incident, now, "resolved", str(actor), f"by {actor.name}")
        device = await _device_of(uow, incident)
        message = f"resolved by {actor.name}: {incident.title}"
        rule = await _rule_name(uow, incident)
        await _announce(uow, EventType.INCIDENT_RESOLVED, incident, device, message, rule)
        await uow.commit()
    return await show(runtime, actor, incident_id)


async def open_count(runtime: Runtime, actor: Actor, device: Device | None = None) -> int:
    """Incidents firing or acknowledged, on one device or in the whole tenant."""
    async with runtime.unit_of_work(actor) as uow:
        return await uow.incidents.open_count(device.id if device else None)


async def _get(uow: UnitOfWork, incident_id: int) -> Incident:
    incident = await uow.incidents.get(incident_id)
    if incident is None:
        raise NotFound(
            f"no incident {incident_id}; list them with `signalbeam alerts ls`", field="incident"
        )
    return incident


async def _device(uow: UnitOfWork, device_id: str) -> Device:
    found = await uow.devices.get_many([device_id])
    if not found:
        raise NotFound(f"no device {device_id!r} in this tenant", field="device")
    return found[0]


async def _rule_name(uow: UnitOfWork, incident: Incident) -> str:
    rule = await uow.alert_rules.get_by_id(incident.rule_id)
    return rule.name if rule else "?"


async def _device_of(uow: UnitOfWork, incident: Incident) -> Device | None:
    if incident.device_id is None:
        return None
    found = await uow.devices.get_many([incident.device_id])
    return found[0] if found else None
