"""The device page's Configuration tab: the effective merged values with where each came
from, whether the device applied them, and the editor and history of the device's own layer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import config_status
from signalbeam.server.services import devices as device_service
from signalbeam.server.services.config import ConfigChangeResult, LayerRef
from signalbeam.server.web.config_layers import Editor, Page, flash
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.devices import device_url
from signalbeam.server.web.forms import Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/devices", route_class=WebRoute)


def _editor(device_id: str) -> Editor:
    return Editor(LayerRef("device", device_id), device_url(device_id) + "/config")


def _page(request: Request, runtime: Runtime, user: WebUser, device_id: str) -> Page:
    async def page(form: Form | None, preview: ConfigChangeResult | None) -> Response:
        detail = await device_service.show(runtime, user.actor, device_id, events=1)
        found = await config_status.device_config(runtime, user.actor, device_id)
        context = await _editor(device_id).context(runtime, user, form, preview)
        context.update(
            title=f"{detail.device.name} · Configuration",
            device=detail.device,
            device_url=device_url(device_id),
            groups=detail.groups,
            effective=found,
            flash=flash(request) if form is None else None,
        )
        status = 422 if form is not None and form.errors else 200
        return render(request, "device_config.html", context, status)

    return page


@router.get("/{device_id}/config", include_in_schema=False)
async def detail(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """The Configuration tab."""
    return await _page(request, runtime, user, device_id)(None, None)


@router.post("/{device_id}/config", include_in_schema=False)
async def change(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Preview the edited values (nothing written), or apply them."""
    page = _page(request, runtime, user, device_id)
    return await _editor(device_id).change(runtime, user, form, page)


@router.post("/{device_id}/config/secrets", include_in_schema=False)
async def set_secret(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Set one secret of the device's layer (write-only)."""
    page = _page(request, runtime, user, device_id)
    return await _editor(device_id).set_secret(runtime, user, form, page)


@router.post("/{device_id}/config/secrets/remove", include_in_schema=False)
async def remove_secret(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove one secret of the device's layer."""
    page = _page(request, runtime, user, device_id)
    return await _editor(device_id).remove_secret(runtime, user, form, page)


@router.post("/{device_id}/config/rollback", include_in_schema=False)
async def rollback(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Bring back an earlier version of the device's layer."""
    page = _page(request, runtime, user, device_id)
    return await _editor(device_id).rollback(runtime, user, form, page)
