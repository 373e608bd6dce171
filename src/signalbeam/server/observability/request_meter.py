"""ASGI middleware counting every HTTP request by route template, method and status class."""

from __future__ import annotations

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalbeam.server.observability.meters import Meters

# Paths no route matched share one label, so scanners probing random URLs add no series.
UNMATCHED = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/v1/devices/{device_id}`), never the raw path."""
    # FastAPI keeps an included router's routes as declared (`/devices/{device_id}`) and puts
    # the whole template, prefixes and all, in its per-request routing state.
    state = scope.get("fastapi")
    effective = state.get("effective_route_context") if isinstance(state, dict) else None
    path = getattr(effective, "path", None)
    if isinstance(path, str) and path and not isinstance(scope.get("route"), Mount):
        return path
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMeter:
    """Times each HTTP request to the end of its answer and counts it.

    `route` fixes the label for an app that answers a single route (the sync fast path);
    otherwise the label is read from the route the router matched, after it ran.
    """

    def __init__(self, app: ASGIApp, meters: Meters, route: str | None = None) -> None:
        self.app = app
        self.meters = meters
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            route = self.route or route_template(scope)
            self.meters.request(route, method, status, time.perf_counter() - started)
