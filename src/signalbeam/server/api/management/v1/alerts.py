"""Alert rules and incidents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from signalbeam.domain.alerts import IncidentState
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import alert_schemas as schemas
from signalbeam.server.api.management.v1.alert_schemas import RuleName
from signalbeam.server.db.models import AlertRule, AlertSilence
from signalbeam.server.services import alert_rules, incidents, silences
from signalbeam.server.services.alert_rules import RuleDraft, spec_of
from signalbeam.server.services.incidents import IncidentView

router = APIRouter(prefix="/alerts", tags=["alerts"])
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the incident's id")]


def _rule(rule: AlertRule) -> schemas.AlertRulePublic:
    return schemas.AlertRulePublic(
        name=rule.name,
        kind=rule.kind,
        severity=rule.severity,
        for_seconds=rule.for_seconds,
        selector=rule.selector,
        group=rule.group_name,
        enabled=rule.enabled,
        metric=rule.metric,
        threshold=rule.threshold,
        mount=rule.mount,
        description=spec_of(rule).describe(),
        created_at=rule.created_at,
        created_by=rule.created_by,
        updated_at=rule.updated_at,
    )


def _draft(body: schemas.AlertRuleCreate) -> RuleDraft:
    return RuleDraft(
        name=body.name,
        kind=body.kind.value,
        severity=body.severity.value,
        for_=body.for_,
        selector=body.selector,
        group=body.group,
        enabled=body.enabled,
        metric=body.metric,
        threshold=body.threshold,
        mount=body.mount,
    )


@router.get("/rules", response_model=list[schemas.AlertRulePublic])
async def list_rules(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.AlertRulePublic]:
    """Every alert rule of your tenant."""
    return [_rule(r) for r in await alert_rules.list_rules(runtime, actor)]


@router.post("/rules", response_model=schemas.AlertRulePublic, status_code=201)
async def create_rule(
    body: schemas.AlertRuleCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.AlertRulePublic:
    """A new rule (operators and admins)."""
    return _rule(await alert_rules.create(runtime, actor, _draft(body)))


@router.post("/preview", response_model=schemas.AlertPreview)
async def preview(
    body: schemas.AlertRuleCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.AlertPreview:
    """What a rule (saved or not) would fire on if it were evaluated now."""
    found = await alert_rules.preview(runtime, actor, _draft(body))
    return schemas.AlertPreview(would_fire=found.subjects, total=found.total, note=found.note)


@router.get("/rules/{name}", response_model=schemas.AlertRulePublic)
async def show_rule(
    name: RuleName, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.AlertRulePublic:
    """One rule."""
    return _rule(await alert_rules.get(runtime, actor, name))


@router.patch("/rules/{name}", response_model=schemas.AlertRulePublic)
async def edit_rule(
    name: RuleName, body: schemas.AlertRuleEdit, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.AlertRulePublic:
    """Change a rule's severity, duration, scope or switch it off; the rest stay."""
    changes = body.model_dump(by_alias=True, exclude_unset=True)
    return _rule(await alert_rules.edit(runtime, actor, name, changes))


@router.delete("/rules/{name}", status_code=204)
async def delete_rule(name: RuleName, runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Delete a rule and its incidents."""
    await alert_rules.delete(runtime, actor, name)
    return Response(status_code=204)


def _incident(view: IncidentView) -> schemas.IncidentPublic:
    i = view.incident
    return schemas.IncidentPublic(
        id=i.id,
        rule=view.rule,
        subject=i.subject,
        device_id=i.device_id,
        state=IncidentState(i.state),
        severity=i.severity,
        title=i.title,
        opened_at=i.opened_at,
        last_fired_at=i.last_fired_at,
        fired_count=i.fired_count,
        acknowledged_at=i.acknowledged_at,
        acknowledged_by=i.acknowledged_by,
        resolved_at=i.resolved_at,
        resolved_by=i.resolved_by,
        cause=i.cause,
    )


def _detail(view: IncidentView) -> schemas.IncidentDetail:
    timeline = [
        schemas.IncidentEntryPublic(at=e.at, kind=e.kind, actor=e.actor, message=e.message)
        for e in view.timeline
    ]
    return schemas.IncidentDetail(**_incident(view).model_dump(), timeline=timeline)


@router.get("/incidents", response_model=schemas.IncidentList)
async def list_incidents(
    runtime: RuntimeDep,
    actor: CurrentActor,
    state: Annotated[list[IncidentState] | None, Query()] = None,
    device: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> schemas.IncidentList:
    """Incidents newest first; `state` (repeatable) and `device` narrow them."""
    states = [s.value for s in state or []]
    views, total = await incidents.list_incidents(runtime, actor, states, device, limit, offset)
    return schemas.IncidentList(
        items=[_incident(v) for v in views], total=total, limit=limit, offset=offset
    )


@router.get("/incidents/{incident_id}", response_model=schemas.IncidentDetail)
async def show_incident(
    incident_id: IncidentId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.IncidentDetail:
    """One incident with its timeline and what changed before it."""
    return _detail(await incidents.show(runtime, actor, incident_id))


@router.post("/incidents/{incident_id}/ack", response_model=schemas.IncidentDetail)
async def acknowledge(
    incident_id: IncidentId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.IncidentDetail:
    """Someone is on it (operators and admins)."""
    return _detail(await incidents.acknowledge(runtime, actor, incident_id))


@router.post("/incidents/{incident_id}/resolve", response_model=schemas.IncidentDetail)
async def resolve(
    incident_id: IncidentId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.IncidentDetail:
    """Close an incident by hand; it opens again if its condition fires again."""
    return _detail(await incidents.resolve(runtime, actor, incident_id))


SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the silence's id")]


def _silence(row: AlertSilence) -> schemas.SilencePublic:
    return schemas.SilencePublic(
        id=row.id,
        selector=row.selector,
        rule=row.rule,
        window=row.window,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        comment=row.comment,
        created_at=row.created_at,
        created_by=row.created_by,
    )


@router.get("/silences", response_model=list[schemas.SilencePublic])
async def list_silences(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.SilencePublic]:
    """Silences and maintenance windows that have not ended."""
    return [_silence(s) for s in await silences.current(runtime, actor)]


@router.post("/silences", response_model=schemas.SilencePublic, status_code=201)
async def silence(
    body: schemas.SilenceCreate, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.SilencePublic:
    """Mute notifications for a while or in a recurring window; incidents still open."""
    row = await silences.create(
        runtime,
        actor,
        for_=body.for_,
        window=body.window,
        until=body.until,
        selector=body.selector,
        rule=body.rule,
        comment=body.comment,
    )
    return _silence(row)


@router.delete("/silences/{silence_id}", response_model=schemas.SilencePublic)
async def end_silence(
    silence_id: SilenceId, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.SilencePublic:
    """End a silence now."""
    return _silence(await silences.end(runtime, actor, silence_id))
