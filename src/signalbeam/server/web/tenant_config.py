"""The tenant's Config defaults page (side bar): the default layer every device starts from,
below groups and devices, with the same editor, secrets and history as theirs."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config import ConfigChangeResult, LayerRef
from signalbeam.server.web.config_layers import Editor, Page, flash
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/config", route_class=WebRoute)
EDITOR = Editor(LayerRef("tenant"), "/config")


def _page(request: Request, runtime: Runtime, user: WebUser) -> Page:
    async def page(form: Form | None, preview: ConfigChangeResult | None) -> Response:
        context = await EDITOR.context(runtime, user, form, preview)
        context.update(
            title="Config defaults",
            flash=flash(request) if form is None else None,
        )
        status = 422 if form is not None and form.errors else 200
        return render(request, "tenant_config.html", context, status)

    return page


@router.get("", include_in_schema=False)
async def detail(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """The tenant layer: its values, secrets by name and history."""
    return await _page(request, runtime, user)(None, None)


@router.post("", include_in_schema=False)
async def change(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Preview the edited defaults (nothing written), or apply them."""
    return await EDITOR.change(runtime, user, form, _page(request, runtime, user))


@router.post("/secrets", include_in_schema=False)
async def set_secret(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Set one secret every device gets unless a group or the device sets its own."""
    return await EDITOR.set_secret(runtime, user, form, _page(request, runtime, user))


@router.post("/secrets/remove", include_in_schema=False)
async def remove_secret(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove one secret of the tenant layer."""
    return await EDITOR.remove_secret(runtime, user, form, _page(request, runtime, user))


@router.post("/rollback", include_in_schema=False)
async def rollback(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Bring back an earlier version of the tenant layer."""
    return await EDITOR.rollback(runtime, user, form, _page(request, runtime, user))
