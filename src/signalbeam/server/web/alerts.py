"""The Alerts page: open incidents first, then recently resolved, refreshed live; one incident
with its timeline and what changed before it, acknowledged or resolved from the page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.alerts import IncidentState
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import incidents as incident_service
from signalbeam.server.services.incidents import IncidentView
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.devices import device_url
from signalbeam.server.web.render import render

router = APIRouter(prefix="/alerts", route_class=WebRoute)
OPEN = [IncidentState.FIRING.value, IncidentState.ACKNOWLEDGED.value]
OPEN_LIMIT = 200
RESOLVED_LIMIT = 25
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def incident_url(incident_id: int) -> str:
    """The page of one incident (the address notifications link to)."""
    return f"/alerts/{incident_id}"


def cause_url(view: IncidentView) -> str | None:
    """The activity log opened at the event that preceded the incident, when it names one."""
    cause = view.incident.cause or {}
    event_id = cause.get("event_id")
    if not isinstance(event_id, int):
        return None
    # The activity log lists events older than `before`: this page starts at the cause.
    params: dict[str, Any] = {"before": event_id + 1}
    if view.incident.device_id:
        params["device"] = view.incident.device_id
    return f"/activity?{urlencode(params)}#event-{event_id}"


async def _incidents(runtime: Runtime, user: WebUser) -> dict[str, Any]:
    open_views, open_total = await incident_service.list_incidents(
        runtime, user.actor, OPEN, limit=OPEN_LIMIT
    )
    # Firing before acknowledged: what nobody has picked up yet comes first.
    open_views.sort(key=lambda v: v.incident.state != IncidentState.FIRING.value)
    resolved, _ = await incident_service.list_incidents(
        runtime, user.actor, [IncidentState.RESOLVED.value], limit=RESOLVED_LIMIT
    )
    return {"open": open_views, "open_total": open_total, "resolved": resolved}


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Open incidents, then the latest resolved ones."""
    context = await _incidents(runtime, user)
    context.update(title="Alerts", tab="incidents")
    return render(request, "alerts.html", context)


@router.get("/incidents", include_in_schema=False)
async def incidents(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Just the incident lists, for live refreshes."""
    return render(request, "alerts_incidents.html", await _incidents(runtime, user))


@router.get("/device-incidents", include_in_schema=False)
async def device_incidents(
    request: Request, runtime: RuntimeDep, user: CurrentUser, device: str
) -> Response:
    """One device's open incidents, for its page (refreshed live)."""
    views, total = await incident_service.list_incidents(
        runtime, user.actor, OPEN, device_id=device, limit=OPEN_LIMIT
    )
    context = {"incidents": views, "total": total, "device_id": device}
    return render(request, "device_incidents.html", context)


async def _detail(request: Request, view: IncidentView) -> Response:
    context = {
        "title": f"Incident #{view.incident.id}",
        "view": view,
        "incident": view.incident,
        "cause": view.incident.cause,
        "cause_url": cause_url(view),
        "subject_url": _subject_url(view),
    }
    return render(request, "incident.html", context)


def _subject_url(view: IncidentView) -> str | None:
    incident = view.incident
    if incident.device_id:
        return device_url(incident.device_id)
    head, _, rest = incident.subject.partition("/")
    return f"/rollouts/{rest}" if head == "rollout" and rest.isdigit() else None


@router.get("/{incident_id:int}", include_in_schema=False)
async def detail(
    request: Request, incident_id: IncidentId, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """One incident: state, subject, timeline, and the change that preceded it."""
    return await _detail(request, await incident_service.show(runtime, user.actor, incident_id))


@router.post("/{incident_id:int}/ack", include_in_schema=False)
async def acknowledge(
    incident_id: IncidentId, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Someone is on it."""
    await incident_service.acknowledge(runtime, user.actor, incident_id)
    return RedirectResponse(incident_url(incident_id), status_code=303)


@router.post("/{incident_id:int}/resolve", include_in_schema=False)
async def resolve(
    incident_id: IncidentId, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Close the incident by hand."""
    await incident_service.resolve(runtime, user.actor, incident_id)
    return RedirectResponse(incident_url(incident_id), status_code=303)
