"""The fleet-wide activity feed: newest first, filterable, refreshed live."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from signalbeam.domain.model import EventType
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import events as event_service
from signalbeam.server.web.deps import CurrentUser, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS
from signalbeam.server.web.render import render

router = APIRouter(prefix="/activity", route_class=WebRoute)
PAGE = 100
Param = Annotated[str, Query(max_length=128)]
# Agents report their own event types; these are the ones worth a filter of their own.
AGENT_TYPES = ["agent.update_applied", "agent.update_failed", "agent.degraded", "agent.recovered"]


async def _feed(
    runtime: Runtime, user: WebUser, type_: str, device: str, before: int | None
) -> dict[str, Any]:
    context: dict[str, Any] = {"type": type_, "device": device, "events": [], "error": None}
    try:
        context["events"] = await event_service.list_events(
            runtime,
            user.actor,
            device_id=device or None,
            types=[type_] if type_ else None,
            before_id=before,
            limit=PAGE,
        )
    except FIELD_ERRORS as err:
        context["error"] = err.detail
    events = context["events"]
    filters = {"type": type_, "device": device}
    context["query"] = urlencode({k: v for k, v in filters.items() if v})
    if len(events) == PAGE:
        context["older"] = urlencode({**filters, "before": events[-1].id})
    context["paged"] = before is not None
    return context


@router.get("", include_in_schema=False)
async def page(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    type: Param = "",
    device: Param = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The activity page with its filters."""
    context = await _feed(runtime, user, type, device, before)
    context.update(title="Activity", types=sorted(t.value for t in EventType) + AGENT_TYPES)
    return render(request, "activity.html", context)


@router.get("/feed", include_in_schema=False)
async def feed(
    request: Request, runtime: RuntimeDep, user: CurrentUser, type: Param = "", device: Param = ""
) -> Response:
    """Just the newest events, for live refreshes."""
    return render(request, "activity_feed.html", await _feed(runtime, user, type, device, None))
