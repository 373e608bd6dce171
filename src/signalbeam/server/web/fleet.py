"""The fleet overview: counts, filters and a paged device table that refreshes itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from signalbeam.domain.errors import InvalidInput, NotFound
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import devices as device_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.services import incidents as incident_service
from signalbeam.server.services.devices import DeviceFilter
from signalbeam.server.web.deps import CurrentUser, WebRoute
from signalbeam.server.web.render import render

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
SORTS = {
    "name": "Name",
    "-last_seen": "Recently seen",
    "last_seen": "Longest silent",
    "presence": "Presence",
    "-enrolled": "Newest",
}


@dataclass(frozen=True)
class FleetQuery:
    """The filters in the address bar, so a filtered view can be bookmarked and shared."""

    presence: str = ""
    selector: str = ""
    group: str = ""
    q: str = ""
    sort: str = "name"
    page: int = 1

    def to_filter(self) -> DeviceFilter:
        return DeviceFilter(
            selector=self.selector or None,
            status=self.presence or None,
            group=self.group or None,
            search=self.q or None,
            sort=self.sort if self.sort in SORTS else "name",
            limit=PAGE_SIZE,
            offset=(self.page - 1) * PAGE_SIZE,
        )

    def url(self, **changes: Any) -> str:
        """This view's address with some filters changed (page resets unless given)."""
        changed = replace(self, **{"page": 1, **changes})
        defaults = vars(FleetQuery())
        params = {k: v for k, v in vars(changed).items() if v and v != defaults[k]}
        return "/?" + urlencode(params) if params else "/"

    def fragment_url(self) -> str:
        """The table fragment's address for this exact view (used by live refreshes)."""
        return "/fleet/table" + self.url(page=self.page).removeprefix("/")


QueryParam = Annotated[str, Query(max_length=500)]


def _query(presence: str, selector: str, group: str, q: str, sort: str, page: int) -> FleetQuery:
    return FleetQuery(presence, selector, group, q, sort, max(page, 1))


async def _table(runtime: Runtime, user: CurrentUser, query: FleetQuery) -> dict[str, Any]:
    errors: dict[str, str] = {}
    devices: list[Any] = []
    total = 0
    try:
        devices, total = await device_service.list_devices(runtime, user.actor, query.to_filter())
    except (InvalidInput, NotFound) as err:
        # A bad selector or an unknown group is shown next to its filter, not as an error page.
        errors[err.field or "q"] = err.detail
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return {
        "devices": devices,
        "total": total,
        "pages": pages,
        "page_size": PAGE_SIZE,
        "query": query,
        "errors": errors,
    }


@router.get("/", include_in_schema=False)
async def overview(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    presence: QueryParam = "",
    selector: QueryParam = "",
    group: QueryParam = "",
    q: QueryParam = "",
    sort: QueryParam = "name",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Counts, filters and the first page of devices."""
    query = _query(presence, selector, group, q, sort, page)
    context = await _table(runtime, user, query)
    context["summary"] = await fleet_service.summary(runtime, user.actor)
    context["firing"] = await _firing(runtime, user)
    context["groups"] = await fleet_service.group_names(runtime, user.actor)
    context["sorts"] = SORTS
    return render(request, "fleet.html", context)


@router.get("/fleet/table", include_in_schema=False)
async def table(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    presence: QueryParam = "",
    selector: QueryParam = "",
    group: QueryParam = "",
    q: QueryParam = "",
    sort: QueryParam = "name",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Just the table, for filter changes and live refreshes."""
    query = _query(presence, selector, group, q, sort, page)
    response = render(request, "fleet_table.html", await _table(runtime, user, query))
    if request.headers.get("sb-push-url"):
        # Filter changes and paging update the address bar; live refreshes must not.
        response.headers["HX-Push-Url"] = query.url(page=query.page)
    return response


@router.get("/fleet/counts", include_in_schema=False)
async def counts(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Just the counts, for live refreshes."""
    summary = await fleet_service.summary(runtime, user.actor)
    context = {"summary": summary, "firing": await _firing(runtime, user)}
    return render(request, "fleet_counts.html", context)


async def _firing(runtime: Runtime, user: CurrentUser) -> int:
    """Incidents nobody has acknowledged yet: what the fleet page points at."""
    _, total = await incident_service.list_incidents(runtime, user.actor, ["firing"], limit=1)
    return total
