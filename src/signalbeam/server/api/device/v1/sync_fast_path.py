"""POST /api/device/v1/sync answered beside the framework rather than through it.

Every device calls sync every interval, so at 10,000 devices it is nearly all the traffic.
Profiling the FastAPI route at its ceiling showed the framework (its middleware layers,
routing, dependency solving, query and body parsing, response wrapping) costing several
times the handler itself. `SyncFastPath` answers exactly that one method and path with the
same service calls, the same pydantic model (`SyncRequest`, decoded straight from the bytes),
the same body limit and the same problem+json errors; `ControlPlaneApp` hands it those
requests before FastAPI sees them. The FastAPI route stays declared so the OpenAPI document
(and the schema-driven fuzz tests, which then exercise this path) describe what is served.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from signalbeam.domain.errors import DomainError
from signalbeam.protocol.device_v1 import SyncRequest
from signalbeam.server.api import problems
from signalbeam.server.api.deps import bearer_secret
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import sync as sync_service

SYNC_PATH = "/api/device/v1/sync"
JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


class ClientGone(Exception):
    """The device hung up mid-request; there is nobody left to answer."""


class SyncFastPath:
    """The sync endpoint as a bare ASGI app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limit = runtime.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._answer(scope, receive)
        except ValidationError as err:
            await problems.validation_problem(err.errors())(scope, receive, send)
        except DomainError as err:
            await problems.domain_problem(err)(scope, receive, send)
        except ClientGone:
            return
        except BodyTooLarge:
            detail = f"request body is larger than {self.limit} bytes; send less data per request"
            await problems.problem(413, "Request body too large", detail, field="body")(
                scope, receive, send
            )
        except Exception as err:  # the same 500 as every other route, never a traceback
            await problems.unexpected_problem(err)(scope, receive, send)
        else:
            headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> bytes:
        # Who is asking before what they sent: a stranger learns nothing about the schema.
        device = await sync_service.authenticate(self.runtime, _bearer(scope))
        body = await self._read_body(scope, receive)
        if not body:
            raise ValidationError.from_exception_data(
                "SyncRequest", [{"type": "missing", "loc": ("body",), "input": None}]
            )
        request = SyncRequest.model_validate_json(body)
        answer = await sync_service.sync(self.runtime, self.runtime.ingestor, device, request)
        return answer.model_dump_json().encode()

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class ControlPlaneApp(FastAPI):
    """FastAPI, except that device syncs go straight to `SyncFastPath`."""

    sync_fast_path: ASGIApp | None = None  # a SyncFastPath, maybe wrapped (metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.sync_fast_path
        if (
            fast is not None
            and scope["type"] == "http"
            and scope["path"] == SYNC_PATH
            and scope["method"] == "POST"
        ):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _bearer(scope: Scope) -> str:
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    return bearer_secret(bytes(header).decode("latin-1"), "device credential")
