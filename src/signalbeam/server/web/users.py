"""Users (admins add them), your API tokens, and your password."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.model import Role
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import users as user_service
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute, WebUser
from signalbeam.server.web.forms import FIELD_ERRORS, Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/users", route_class=WebRoute)
# The same rule the management API's UserCreate schema enforces.
USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,200}")
TOKEN_EXPIRY = {
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
    "never": None,
}


async def _page(
    request: Request,
    runtime: Runtime,
    user: WebUser,
    forms: dict[str, Form] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    forms = forms or {}
    context: dict[str, Any] = {
        "title": "Users & tokens",
        "users": await user_service.list_users(runtime, user.actor),
        "tokens": await user_service.list_tokens(runtime, user.actor),
        "roles": [r.value for r in Role],
        "expiry": list(TOKEN_EXPIRY),
        "user_form": forms.get("user", Form({"role": ["viewer"]})),
        "token_form": forms.get("token", Form({"expires_in": ["90d"]})),
        "password_form": forms.get("password", Form({})),
        "created_token": None,
        "flash": None,
        **(extra or {}),
    }
    failed = any(form.errors for form in forms.values())
    return render(request, "users.html", context, 422 if failed else 200)


@router.get("", include_in_schema=False)
async def page(request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Users of the tenant and your own API tokens."""
    return await _page(request, runtime, user)


@router.post("", include_in_schema=False)
async def create_user(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Add a user (admins only); they sign in with the password given here."""
    username, role = form.get("username"), form.get("role")
    if not USERNAME.fullmatch(username):
        form.fail("username", "Use letters, digits and . _ @ + - only (as the API does).")
    if role not in {r.value for r in Role}:
        form.fail("role", "Choose admin, operator or viewer.")
    if not form.errors:
        try:
            await user_service.create_user(
                runtime, user.actor, username, Role(role), form.get("password") or None
            )
        except FIELD_ERRORS as err:
            form.fail(err.field or "username", err.detail)
    if form.errors:
        return await _page(request, runtime, user, {"user": form})
    return await _page(
        request, runtime, user, extra={"flash": f"User {username} created as {role}."}
    )


@router.post("/tokens", include_in_schema=False)
async def create_token(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """A new API token for scripts and the CLI; its secret is shown once."""
    name = form.get("name")
    if not name:
        form.fail("name", "Name the token after where it will be used, such as ci-deploy.")
    if form.get("expires_in") not in TOKEN_EXPIRY:
        form.fail("expires_in", "Choose one of the offered expiry times.")
    if form.errors:
        return await _page(request, runtime, user, {"token": form})
    issued = await user_service.create_token(
        runtime, user.actor, name[:200], TOKEN_EXPIRY[form.get("expires_in")]
    )
    created = {"name": issued.token.name, "secret": issued.secret}
    return await _page(request, runtime, user, extra={"created_token": created})


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
async def revoke_token(
    token_id: int, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Revoke one of your API tokens."""
    await user_service.revoke_token(runtime, user.actor, token_id)
    return RedirectResponse("/users", status_code=303)


@router.post("/password", include_in_schema=False)
async def set_password(
    request: Request, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> Response:
    """Change your own password."""
    password = form.values.get("password", [""])[0]
    if password != form.values.get("confirm", [""])[0]:
        form.fail("confirm", "The two passwords differ.")
    else:
        try:
            await user_service.set_password(runtime, user.actor, user.name, password)
        except FIELD_ERRORS as err:
            form.fail("password", err.detail)
    if form.errors:
        return await _page(request, runtime, user, {"password": form})
    return await _page(request, runtime, user, extra={"flash": "Password changed."})
