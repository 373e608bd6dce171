"""405 Method Not Allowed with an `Allow` header naming every method the path takes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route answers on this scope's path.

    Starlette's own 405 names only the first matching route's methods, but a path such as
    `/api/v1/users` is two routes (GET and POST), and FastAPI keeps included routers nested,
    so each method is asked of the routes as the router would ask it: RFC 9110 wants them all.
    """
    return [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def allow_header(request: Request) -> dict[str, str]:
    """The `Allow` header for a 405 on this request's path."""
    return {"Allow": ", ".join(allowed_methods(request.app.router.routes, request.scope))}
