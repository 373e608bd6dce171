"""The group page's Configuration tab: how many members applied their config, and the
editor and history of the group's layer (with its priority among groups)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import config_status
from signalbeam.server.services import groups as group_service
from signalbeam.server.services.config import ConfigChangeResult, LayerRef
from signalbeam.server.web.config_layers import Editor, Page, flash
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import Form
from signalbeam.server.web.groups import group_url
from signalbeam.server.web.render import render

router = APIRouter(prefix="/groups", route_class=WebRoute)


def _editor(name: str) -> Editor:
    return Editor(LayerRef("group", name), group_url(name) + "/config")


def _page(request: Request, runtime: Runtime, user: WebUser, name: str) -> Page:
    async def page(form: Form | None, preview: ConfigChangeResult | None) -> Response:
        group, _, total = await group_service.show(runtime, user.actor, name, limit=1)
        context = await _editor(name).context(runtime, user, form, preview)
        context.update(
            title=f"{group.name} · Configuration",
            group=group,
            group_url=group_url(group.name),
            total=total,
            counts=await config_status.group_status(runtime, user.actor, name),
            flash=flash(request) if form is None else None,
        )
        status = 422 if form is not None and form.errors else 200
        return render(request, "group_config.html", context, status)

    return page


@router.get("/{name}/config", include_in_schema=False)
async def detail(request: Request, name: str, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """The Configuration tab."""
    return await _page(request, runtime, user, name)(None, None)


@router.post("/{name}/config", include_in_schema=False)
async def change(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Preview the edited values (nothing written), or apply them."""
    page = _page(request, runtime, user, name)
    return await _editor(name).change(runtime, user, form, page)


@router.post("/{name}/config/secrets", include_in_schema=False)
async def set_secret(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Set one secret of the group's layer (write-only)."""
    page = _page(request, runtime, user, name)
    return await _editor(name).set_secret(runtime, user, form, page)


@router.post("/{name}/config/secrets/remove", include_in_schema=False)
async def remove_secret(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove one secret of the group's layer."""
    page = _page(request, runtime, user, name)
    return await _editor(name).remove_secret(runtime, user, form, page)


@router.post("/{name}/config/rollback", include_in_schema=False)
async def rollback(
    request: Request, name: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Bring back an earlier version of the group's layer."""
    page = _page(request, runtime, user, name)
    return await _editor(name).rollback(runtime, user, form, page)
