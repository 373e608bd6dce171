"""Signing in (password or API token) and out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from signalbeam.domain.errors import Unauthenticated
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import users as user_service
from signalbeam.server.services.tenants import DEFAULT_TENANT
from signalbeam.server.web import session as web_session
from signalbeam.server.web.deps import CSRF_FIELD, CurrentUser, PostedForm, WebRoute
from signalbeam.server.web.forms import Form, read_form
from signalbeam.server.web.render import render

router = APIRouter(route_class=WebRoute)
SESSION_TOKEN_NAME = "dashboard session"  # noqa: S105 - a token's display name


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a phishing link borrow our login page.
    # Browsers read "/\\host" like "//host", so a backslash is refused as well.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, form: Form, status_code: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"form": form, "csrf": csrf}, status_code)
    secure = request.url.scheme == "https"
    response.set_cookie(
        web_session.LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure
    )
    return response


@router.get("/login", include_in_schema=False)
async def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=500)] = None,
    expired: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    """The sign-in form."""
    form = Form({"next": [_safe_next(next)], "tenant": [DEFAULT_TENANT]})
    if expired:
        form.fail("form", "Your session has ended; please sign in again.")
    return _login_page(request, form)


async def _sign_in(runtime: Runtime, form: Form) -> web_session.Session:
    token = form.get("token")
    if token:
        await user_service.authenticate(runtime, token)
        return web_session.new_session(token, None)
    tenant = form.get("tenant") or DEFAULT_TENANT
    issued = await user_service.login(
        runtime, tenant, form.get("username"), form.get("password"), SESSION_TOKEN_NAME
    )
    return web_session.new_session(issued.secret, issued.token.id)


@router.post("/login", include_in_schema=False)
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the password (or API token) and set the session cookie."""
    form = await read_form(request)
    expected = request.cookies.get(web_session.LOGIN_CSRF_COOKIE, "")
    if not expected or not web_session.csrf_matches(expected, form.get(CSRF_FIELD)):
        form.fail("form", "The sign-in form expired; please try again.")
        return _login_page(request, form, 400)
    if not form.get("token") and not (form.get("username") and form.get("password")):
        form.fail("username", "Enter your username and password, or an API token.")
        return _login_page(request, form, 422)
    try:
        session = await _sign_in(runtime, form)
    except Unauthenticated as err:
        form.fail("token" if form.get("token") else "password", err.detail)
        return _login_page(request, form, 401)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        web_session.COOKIE,
        web_session.encode(runtime, session),
        max_age=web_session.MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(web_session.LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", include_in_schema=False)
async def logout(runtime: RuntimeDep, user: CurrentUser, form: PostedForm) -> Response:
    """Revoke the token this session was given and forget the cookie."""
    if user.session.token_id is not None:
        # A token the user pasted in is theirs to keep; only the one we issued is revoked.
        await user_service.revoke_token(runtime, user.actor, user.session.token_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(web_session.COOKIE, path="/")
    return response
