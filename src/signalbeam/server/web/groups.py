"""Groups: list, create static or dynamic (with a live preview of the selector), members."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import config_status
from signalbeam.server.services import devices as device_service
from signalbeam.server.services import groups as group_service
from signalbeam.server.services.devices import DeviceFilter
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/groups", route_class=WebRoute)
MEMBERS_PAGE = 50
PREVIEW = 8


def group_url(name: str) -> str:
    """The detail page of one group."""
    return "/groups/" + quote(name, safe="")


async def _list(request: Request, runtime: Runtime, user: WebUser, form: Form | None) -> Response:
    summaries = await group_service.list_groups(runtime, user.actor)
    context = {"title": "Groups", "groups": summaries, "form": form or Form({"kind": ["static"]})}
    return render(request, "groups.html", context, 422 if form and form.errors else 200)


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Every group with its member count, and the form to create one."""
    return await _list(request, runtime, user, None)


@router.get("/preview", include_in_schema=False)
async def preview(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    selector: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """Which devices a selector matches right now, as the user types it."""
    context: dict[str, Any] = {"selector": selector.strip(), "devices": [], "total": 0}
    if context["selector"]:
        try:
            request_filter = DeviceFilter(selector=context["selector"], limit=PREVIEW)
            devices, total = await device_service.list_devices(runtime, user.actor, request_filter)
            context.update(devices=devices, total=total)
        except FIELD_ERRORS as err:
            context["error"] = err.detail
    return render(request, "group_preview.html", context)


@router.post("", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Create a static group, or a dynamic one from a selector."""
    dynamic = form.get("kind") == "dynamic"
    if dynamic and not form.get("selector"):
        form.fail("selector", "A dynamic group needs a selector, such as env=prod,site=oslo.")
        return await _list(request, runtime, user, form)
    try:
        selector = form.get("selector") if dynamic else None
        group = await group_service.create(
            runtime, user.actor, form.get("name"), selector, form.get("description")[:200]
        )
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _list(request, runtime, user, form)
    return RedirectResponse(group_url(group.name), status_code=303)


async def _detail(
    request: Request, runtime: Runtime, user: WebUser, name: str, page: int, form: Form | None
) -> Response:
    offset = (page - 1) * MEMBERS_PAGE
    group, devices, total = await group_service.show(
        runtime, user.actor, name, limit=MEMBERS_PAGE, offset=offset
    )
    context = {
        "title": group.name,
        "group": group,
        "devices": devices,
        "total": total,
        "page": page,
        "pages": max((total + MEMBERS_PAGE - 1) // MEMBERS_PAGE, 1),
        "group_url": group_url(group.name),
        "form": form or Form({}),
        "config_counts": await config_status.group_status(runtime, user.actor, name),
    }
    return render(request, "group.html", context, 422 if form and form.errors else 200)


@router.get("/{name}", include_in_schema=False)
async def detail(
    request: Request,
    name: str,
    runtime: RuntimeDep,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """A group with a page of its members."""
    return await _detail(request, runtime, user, name, page, None)


async def _members(
    request: Request, runtime: Runtime, user: WebUser, name: str, form: Form, add: bool
) -> Response:
    ids = [
        part.strip() for part in form.get("devices").replace("\n", ",").split(",") if part.strip()
    ]
    if not ids:
        form.fail("devices", "Enter one or more device ids, separated by commas.")
        return await _detail(request, runtime, user, name, 1, form)
    try:
        await group_service.change_members(runtime, user.actor, name, ids, add=add)
    except FIELD_ERRORS as err:
        form.fail("devices", err.detail)
        return await _detail(request, runtime, user, name, 1, form)
    return RedirectResponse(group_url(name), status_code=303)


@router.post("/{name}/members", include_in_schema=False)
async def add_members(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add devices to a static group."""
    return await _members(request, runtime, user, name, form, add=True)


@router.post("/{name}/members/remove", include_in_schema=False)
async def remove_members(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Take devices out of a static group."""
    return await _members(request, runtime, user, name, form, add=False)


@router.post("/{name}/delete", include_in_schema=False)
async def delete(name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm) -> Response:
    """Delete a group; its devices stay as they are."""
    await group_service.delete(runtime, user.actor, name)
    return RedirectResponse("/groups", status_code=303)
