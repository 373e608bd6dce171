"""Who is signed in, CSRF checks, and one place that turns errors into pages or redirects."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from signalbeam.domain.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from signalbeam.domain.model import Role
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.services import users as user_service
from signalbeam.server.services.context import Actor
from signalbeam.server.web import session as web_session
from signalbeam.server.web.forms import Form, read_form
from signalbeam.server.web.render import render

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """No valid session: send the browser to the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebUser:
    """The signed-in user as templates see them: who, which role, what they may do."""

    actor: Actor
    session: web_session.Session

    @property
    def name(self) -> str:
        return self.actor.name

    @property
    def role(self) -> str:
        return self.actor.role.value

    @property
    def can_operate(self) -> bool:
        """Operators and admins change the fleet; viewers only look."""
        return self.actor.role.allows(Role.OPERATOR)

    @property
    def is_admin(self) -> bool:
        return self.actor.role.allows(Role.ADMIN)

    @property
    def csrf(self) -> str:
        return self.session.csrf


async def current_user(request: Request, runtime: RuntimeDep) -> WebUser:
    """The user behind the session cookie, re-checked against their API token on every request."""
    session = web_session.decode(runtime, request.cookies.get(web_session.COOKIE))
    if session is None:
        raise LoginRequired()
    try:
        actor = await user_service.authenticate(runtime, session.token)
    except Unauthenticated as err:
        raise LoginRequired("Your session has ended; please sign in again.") from err
    user = WebUser(actor=actor, session=session)
    request.state.web_user = user
    return user


CurrentUser = Annotated[WebUser, Depends(current_user)]


async def posted_form(request: Request, user: CurrentUser) -> Form:
    """The submitted form, refused unless it carries this session's CSRF token."""
    form = await read_form(request)
    presented = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not web_session.csrf_matches(user.csrf, presented):
        raise Forbidden("this form is stale or came from another site; reload the page and retry")
    return form


PostedForm = Annotated[Form, Depends(posted_form)]


def _login_redirect(request: Request, reason: str) -> Response:
    target = "/login?next=" + quote(request.url.path)
    if reason:
        target += "&expired=1"
    response: Response
    if request.headers.get("hx-request"):
        # htmx follows HX-Redirect with a full page load instead of swapping a login page in.
        response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    response.delete_cookie(web_session.COOKIE, path="/")
    return response


ERROR_STATUS = {NotFound: 404, Forbidden: 403, Unauthenticated: 401}


def error_page(request: Request, err: DomainError) -> Response:
    """A full page (or an htmx fragment) that says what went wrong and what to do."""
    status = next((code for kind, code in ERROR_STATUS.items() if isinstance(err, kind)), 400)
    return render(request, "error.html", {"title": err.title, "detail": err.detail}, status)


class WebRoute(APIRoute):
    """A dashboard route: sign-in redirects and error pages instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as err:
                return _login_redirect(request, err.reason)
            except DomainError as err:
                return error_page(request, err)
            except RequestValidationError as err:
                # A hand-edited address (page=abc): say which parameter, as a page.
                problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in err.errors())
                return error_page(request, InvalidInput(f"this address is not valid ({problems})"))

        return route
