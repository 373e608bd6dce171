"""The device routes every device calls all the time, answered beside the framework.

At 10,000 devices nearly all traffic is syncs and held watches. Through FastAPI each request
runs its middleware layers, routing and dependency solving; a held watch also keeps all of
that alive for up to a minute (about 160 garbage-collected objects and 29 coroutines per
watch, measured with 1,825 watches held), which the collector walks again and again. A fast
path answers one method and path with the same service calls, the same pydantic models and
the same problem+json errors; `ControlPlaneApp` hands it those requests before FastAPI sees
them. The FastAPI routes stay declared, so the OpenAPI document (and the schema-driven fuzz
tests, which then exercise the fast paths) describe what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from signalbeam.domain.errors import DomainError
from signalbeam.server.api import problems
from signalbeam.server.api.deps import bearer_secret

JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes; send less data per request")


class ClientGone(Exception):
    """The device hung up mid-request; there is nobody left to answer."""


class ControlPlaneApp(FastAPI):
    """FastAPI, except that the hottest device routes go straight to their fast paths."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        # (method, path) -> a fast path, maybe wrapped (metrics, request context)
        self.fast_paths: dict[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fast = self.fast_paths.get((scope["method"], scope["path"]))
            if fast is not None:
                await fast(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def device_bearer(scope: Scope) -> str:
    """The device credential in the request's Authorization header."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    return bearer_secret(bytes(header).decode("latin-1"), "device credential")


async def respond(scope: Scope, receive: Receive, send: Send, answer: Awaitable[bytes]) -> None:
    """Send `answer`'s JSON, or the problem+json the same failure gets on any other route."""
    try:
        body = await answer
    except ValidationError as err:
        await problems.validation_problem(err.errors())(scope, receive, send)
    except DomainError as err:
        await problems.domain_problem(err)(scope, receive, send)
    except ClientGone:
        return
    except BodyTooLarge as err:
        await problems.problem(413, "Request body too large", str(err), field="body")(
            scope, receive, send
        )
    except Exception as err:  # the same 500 as every other route, never a traceback
        await problems.unexpected_problem(err)(scope, receive, send)
    else:
        await send_json(send, body)


async def send_json(send: Send, body: bytes) -> None:
    """A 200 answer with a JSON body."""
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
