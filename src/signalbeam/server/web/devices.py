"""Device detail: facts, labels and groups (editable), health charts, what runs, activity."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from signalbeam.domain.model import GroupKind
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.api.management.v1 import convert
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import actions
from signalbeam.server.services import devices as device_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.services import groups as group_service
from signalbeam.server.services.bundles import Target
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/devices", route_class=WebRoute)
RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
}
ACTIVITY = 30


def device_url(device_id: str) -> str:
    """The detail page of one device."""
    return "/devices/" + quote(device_id, safe="")


async def _state(runtime: Runtime, user: WebUser, device_id: str) -> dict[str, Any]:
    detail = await device_service.show(runtime, user.actor, device_id, events=ACTIVITY)
    device = detail.device
    return {
        "device": device,
        "groups": detail.groups,
        "events": detail.events,
        "desired": convert.desired(device),
        "reported": convert.reported(device),
        "device_url": device_url(device.device_id),
    }


async def _page(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    device_id: str,
    form: Form | None = None,
    flash: str | None = None,
) -> Response:
    context = await _state(runtime, user, device_id)
    context["flash"] = flash
    static = set(await fleet_service.group_names(runtime, user.actor, GroupKind.STATIC))
    context.update(
        title=context["device"].name,
        form=form or Form({}),
        static_groups=sorted(static),
        joinable=sorted(static - set(context["groups"])),
        ranges=list(RANGES),
        range=chosen if (chosen := request.query_params.get("range")) in RANGES else "1h",
    )
    status = 422 if form is not None and form.errors else 200
    return render(request, "device.html", context, status)


@router.get("/{device_id}", include_in_schema=False)
async def detail(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """The whole device page."""
    return await _page(request, runtime, user, device_id)


@router.get("/{device_id}/state", include_in_schema=False)
async def state(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """Desired vs reported, containers and apps, and activity: the parts that change live."""
    return render(request, "device_state.html", await _state(runtime, user, device_id))


async def _apply(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    device_id: str,
    form: Form,
    change: Awaitable[object],
) -> Response:
    """Run a change; on a domain error show the page again with the message by its field."""
    try:
        await change
    except FIELD_ERRORS as err:
        form.fail(form.get("_field") or err.field or "form", err.detail)
        return await _page(request, runtime, user, device_id, form)
    return RedirectResponse(device_url(device_id), status_code=303)


@router.post("/{device_id}/labels", include_in_schema=False)
async def add_label(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Set one label (a new key, or a new value for a key)."""
    key, value = form.get("key"), form.get("value")
    if not key:
        form.fail("key", "Give the label a key, such as site.")
        return await _page(request, runtime, user, device_id, form)
    form.values["_field"] = ["key"]
    change = device_service.edit_labels(runtime, user.actor, device_id, {key: value}, [])
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/labels/remove", include_in_schema=False)
async def remove_label(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Remove one label."""
    change = device_service.edit_labels(runtime, user.actor, device_id, {}, [form.get("key")])
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/groups", include_in_schema=False)
async def join_group(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add the device to a static group."""
    form.values["_field"] = ["group"]
    change = group_service.change_members(
        runtime, user.actor, form.get("group"), [device_id], add=True
    )
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/groups/remove", include_in_schema=False)
async def leave_group(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Take the device out of a static group."""
    form.values["_field"] = ["group"]
    change = group_service.change_members(
        runtime, user.actor, form.get("group"), [device_id], add=False
    )
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/decommission", include_in_schema=False)
async def decommission(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Revoke the device's credential and take it out of the fleet."""
    change = device_service.decommission(runtime, user.actor, device_id)
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/cordon", include_in_schema=False)
async def cordon(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Leave the device out of new rollouts and assignments."""
    change = actions.run(runtime, user.actor, actions.CORDON, Target(devices=[device_id]))
    return await _apply(request, runtime, user, device_id, form, change)


@router.post("/{device_id}/uncordon", include_in_schema=False)
async def uncordon(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Let new rollouts and assignments include the device again."""
    change = actions.run(runtime, user.actor, actions.UNCORDON, Target(devices=[device_id]))
    return await _apply(request, runtime, user, device_id, form, change)


async def _act(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    device_id: str,
    form: Form,
    action: str,
    unit: str | None = None,
) -> Response:
    """Run a device action on this device; show the page with its result, or why not."""
    try:
        [result] = await actions.run(
            runtime, user.actor, action, Target(devices=[device_id]), unit=unit
        )
    except FIELD_ERRORS as err:
        form.fail("form", err.detail)
        return await _page(request, runtime, user, device_id, form)
    what = f"Restart {unit}" if unit else ACTION_NAMES[action]
    if result.status in ("failed", "skipped"):
        form.fail("form", f"{what}: {result.detail}")
        return await _page(request, runtime, user, device_id, form)
    return await _page(request, runtime, user, device_id, flash=f"{what}: {result.detail}.")


ACTION_NAMES = {"restart-agent": "Restart agent", "reboot": "Reboot", "drain": "Drain"}


@router.post("/{device_id}/restart-agent", include_in_schema=False)
async def restart_agent(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Restart the device's agent; what the bundle runs keeps running."""
    return await _act(request, runtime, user, device_id, form, "restart-agent")


@router.post("/{device_id}/reboot", include_in_schema=False)
async def reboot(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Reboot the device; the page says so until it is back with a new boot id."""
    return await _act(request, runtime, user, device_id, form, "reboot")


@router.post("/{device_id}/drain", include_in_schema=False)
async def drain(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Cordon the device and stop its bundle's units."""
    return await _act(request, runtime, user, device_id, form, "drain")


@router.post("/{device_id}/units/restart", include_in_schema=False)
async def restart_unit(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Restart one container or app of the device's bundle."""
    return await _act(request, runtime, user, device_id, form, "restart", form.get("unit"))


@router.get("/{device_id}/metrics.json", include_in_schema=False)
async def metrics(
    device_id: str,
    runtime: RuntimeDep,
    user: CurrentUser,
    range: Annotated[str, Query(pattern="^(1h|6h|24h|7d)$")] = "1h",
) -> JSONResponse:
    """Columns for uPlot: epoch seconds and the averaged cpu, memory and disk per step."""
    start = datetime.now(UTC) - RANGES[range]
    history = await device_service.metrics(runtime, user.actor, device_id, start, None, None)
    return JSONResponse(
        {
            "from": history.start.timestamp(),
            "to": history.end.timestamp(),
            "ts": [b.start.timestamp() for b in history.buckets],
            **{name: [b.mean(name) for b in history.buckets] for name in ("cpu", "memory", "disk")},
        }
    )
