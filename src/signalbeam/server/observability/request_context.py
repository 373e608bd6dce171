"""Which request a log line belongs to: a request id per request, the device being served.

`RequestContext` gives every HTTP request an id (the client's `X-Request-ID` when it is a
sane token, else a new one), answers with it in `X-Request-ID`, keeps it in a context
variable for the log formatters, and logs one line when the request is answered.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalbeam.server.observability import tracing
from signalbeam.server.observability.request_meter import route_template
from signalbeam.server.security import (
    API_TOKEN_PREFIX,
    DEVICE_CREDENTIAL_PREFIX,
    ENROLLMENT_TOKEN_PREFIX,
)

log = logging.getLogger("signalbeam.server.requests")
HEADER = b"x-request-id"
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# A client that sends a secret as its request id must not have it written to the log.
SECRET_PREFIXES = (API_TOKEN_PREFIX, DEVICE_CREDENTIAL_PREFIX, ENROLLMENT_TOKEN_PREFIX)
# Device API, probes, scrapes and assets come every few seconds from every device or tool:
# their lines are debug, so the info log is about what people do.
QUIET_PREFIXES = ("/api/device/", "/static/")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class RequestInfo:
    """What log lines about the current request say about it."""

    request_id: str
    device_id: str | None = None


current: ContextVar[RequestInfo | None] = ContextVar("signalbeam_request", default=None)


def serving_device(device_id: str) -> None:
    """Note the device the current request is for (after its credential checked out)."""
    info = current.get()
    if info is not None:
        info.device_id = device_id


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a sane token and no secret, else a new id."""
    for name, value in headers:
        if name == HEADER:
            offered = value.decode("latin-1")
            if SANE_ID.fullmatch(offered) and not offered.startswith(SECRET_PREFIXES):
                return offered
    return secrets.token_hex(8)


def _quiet(path: str) -> bool:
    return path in QUIET_PATHS or path.startswith(QUIET_PREFIXES)


class RequestContext:
    """ASGI middleware: the request id in a context variable, a response header and a log line.

    `route` fixes the route logged for an app that answers a single route (the sync fast path).
    """

    def __init__(self, app: ASGIApp, route: str | None = None) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        info = RequestInfo(request_id(scope["headers"]))
        token = current.set(info)
        tracing.annotate(request_id=info.request_id)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, info)
            else:
                await self.app(scope, receive, send)
        finally:
            current.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo) -> None:
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering
        header = (b"x-request-id", info.request_id.encode())

        async def with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, with_request_id)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        level = logging.DEBUG if _quiet(scope["path"]) else logging.INFO
        if not log.isEnabledFor(level):
            return
        route = self.route or route_template(scope)
        duration_ms = round(seconds * 1000, 1)
        log.log(
            level,
            "%s %s %s in %.1f ms",
            scope["method"],
            route,
            status,
            duration_ms,
            extra={
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
            },
        )
