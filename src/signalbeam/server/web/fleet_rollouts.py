"""Rollout pages: list, create with a dry-run preview of the waves, a live view, and controls.

(Named fleet_rollouts so it never collides with the rollout engine's own modules.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.rollouts import parse_policy
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.api.management.v1 import rollout_schemas as views
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import bundles as bundle_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.services import rollouts as rollout_service
from signalbeam.server.services.context import Actor
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/rollouts", route_class=WebRoute)
POLICY_FIELDS = ("waves", "failure_threshold", "on_failure", "soak", "apply_timeout", "offline")
Control = Callable[[Runtime, Actor, int], Awaitable[rollout_service.RolloutView]]
CONTROLS: dict[str, Control] = {
    "pause": rollout_service.pause,
    "resume": rollout_service.resume,
    "cancel": rollout_service.cancel,
    "rollback": rollout_service.rollback,
}


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Every rollout, newest first, with its progress."""
    found = await rollout_service.list_rollouts(runtime, user.actor, None, 200)
    context = {"title": "Rollouts", "rollouts": [views.rollout(view) for view in found]}
    return render(request, "fleet_rollouts.html", context)


async def _form_page(
    request: Request, runtime: Runtime, user: WebUser, form: Form, plan: Any = None
) -> Response:
    context = {
        "title": "New rollout",
        "form": form,
        "plan": plan,
        "bundles": [b.bundle.name for b in await bundle_service.list_bundles(runtime, user.actor)],
        "groups": await fleet_service.group_names(runtime, user.actor),
    }
    return render(request, "fleet_rollout_new.html", context, 422 if form.errors else 200)


@router.get("/new", include_in_schema=False)
async def new(
    request: Request,
    runtime: RuntimeDep,
    user: CurrentUser,
    bundle: Annotated[str, Query(max_length=63)] = "",
) -> Response:
    """The form to start a rollout."""
    form = Form({"bundle": [bundle], "version": ["latest"], "target": ["group"]})
    return await _form_page(request, runtime, user, form)


def _request(form: Form) -> rollout_service.RolloutRequest:
    policy = parse_policy(
        waves=form.optional("waves"),
        failure_threshold=form.optional("failure_threshold"),
        on_failure=form.optional("on_failure"),
        soak=form.optional("soak"),
        apply_timeout=form.optional("apply_timeout"),
        offline=form.optional("offline"),
    )
    kind = form.get("target")
    target = bundle_service.Target(
        group=form.get("group") if kind == "group" else None,
        selector=form.get("selector") if kind == "selector" else None,
        devices=[d.strip() for d in form.get("devices").split(",") if d.strip()]
        if kind == "devices"
        else None,
    )
    target.kind()
    if not form.get("bundle"):
        raise InvalidInput("Choose the bundle to roll out.", field="bundle")
    version = form.get("version") or bundle_service.LATEST
    return rollout_service.RolloutRequest(form.get("bundle"), version, target, policy)


@router.post("/new", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Preview the waves (action=plan) or start the rollout."""
    try:
        wanted = _request(form)
        if form.get("action") == "plan":
            plan = views.planned(await rollout_service.plan(runtime, user.actor, wanted))
            return await _form_page(request, runtime, user, form, plan)
        created = await rollout_service.create(runtime, user.actor, wanted)
    except FIELD_ERRORS as err:
        field = err.field if err.field in _FIELDS else "form"
        form.fail(field, err.detail)
        return await _form_page(request, runtime, user, form)
    return RedirectResponse(f"/rollouts/{created.row.id}", status_code=303)


_FIELDS = {"bundle", "version", "group", "selector", "devices", "target", *POLICY_FIELDS}


async def _detail(runtime: Runtime, user: WebUser, rollout_id: int) -> dict[str, Any]:
    rollout = views.rollout_detail(await rollout_service.show(runtime, user.actor, rollout_id))
    return {"title": f"Rollout {rollout.id}", "rollout": rollout}


@router.get("/{rollout_id}", include_in_schema=False)
async def detail(
    request: Request, rollout_id: int, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """One rollout: waves, failures with reasons, every device, and the controls."""
    return render(request, "fleet_rollout.html", await _detail(runtime, user, rollout_id))


@router.get("/{rollout_id}/progress", include_in_schema=False)
async def progress(
    request: Request, rollout_id: int, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """Just the live part of the rollout page."""
    context = await _detail(runtime, user, rollout_id)
    return render(request, "fleet_rollout_progress.html", context)


@router.post("/{rollout_id}/{action}", include_in_schema=False)
async def control(
    rollout_id: int, action: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Pause, resume, cancel or roll back."""
    if action not in CONTROLS:
        raise InvalidInput(f"unknown action {action}; use pause, resume, cancel or rollback")
    await CONTROLS[action](runtime, user.actor, rollout_id)
    return RedirectResponse(f"/rollouts/{rollout_id}", status_code=303)
