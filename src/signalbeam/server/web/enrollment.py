"""Enrollment tokens: create one and copy the install command, list them, revoke them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.model import GroupKind
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.api.management.v1 import convert
from signalbeam.server.api.management.v1.enrollment import install_command
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import enrollment as enrollment_service
from signalbeam.server.services import fleet as fleet_service
from signalbeam.server.services.enrollment import TokenSpec
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form, parse_labels
from signalbeam.server.web.render import render

router = APIRouter(prefix="/enrollment", route_class=WebRoute)
EXPIRY = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "never": None,
}


async def _page(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    form: Form | None = None,
    created: dict[str, Any] | None = None,
) -> Response:
    tokens = await enrollment_service.list_tokens(runtime, user.actor)
    context = {
        "title": "Enrollment",
        "tokens": [convert.enrollment_token(t) for t in tokens],
        "static_groups": await fleet_service.group_names(runtime, user.actor, GroupKind.STATIC),
        "expiry": list(EXPIRY),
        "form": form or Form({"expires_in": ["24h"]}),
        "created": created,
        "server_url": runtime.settings.base_url,
    }
    status = 422 if form is not None and form.errors else 200
    return render(request, "enrollment.html", context, status)


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """The token list and the form to create one."""
    return await _page(request, runtime, user)


def _spec(form: Form) -> TokenSpec | None:
    """The token the form asks for, or None after noting each bad field on the form."""
    labels: dict[str, str] = {}
    try:
        labels = parse_labels(form.get("labels"))
    except FIELD_ERRORS as err:
        form.fail("labels", err.detail)
    max_uses = form.get("max_uses")
    if max_uses and not max_uses.isdigit():
        form.fail("max_uses", "Enter a whole number of devices, or leave it empty for no limit.")
    if form.get("expires_in", "24h") not in EXPIRY:
        form.fail("expires_in", "Choose one of the offered expiry times.")
    if form.errors:
        return None
    return TokenSpec(
        description=form.get("description")[:200],
        expires_in=EXPIRY[form.get("expires_in", "24h")],
        max_uses=int(max_uses) if max_uses else None,
        labels=labels,
        group=form.optional("group"),
    )


@router.post("", include_in_schema=False)
async def create(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Create a token and show its secret and install command, once."""
    spec = _spec(form)
    if spec is None:
        return await _page(request, runtime, user, form)
    try:
        new = await enrollment_service.create_token(runtime, user.actor, spec)
    except FIELD_ERRORS as err:
        form.fail(err.field or "form", err.detail)
        return await _page(request, runtime, user, form)
    created = {
        "id": new.token.id,
        "secret": new.secret,
        "command": install_command(runtime.settings.base_url, new.secret),
    }
    return await _page(request, runtime, user, None, created)


@router.post("/{token_id}/revoke", include_in_schema=False)
async def revoke(
    token_id: int, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Revoke a token; devices that already joined with it keep working."""
    await enrollment_service.revoke_token(runtime, user.actor, token_id)
    return RedirectResponse("/enrollment", status_code=303)
