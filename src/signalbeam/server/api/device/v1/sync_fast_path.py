"""POST /api/device/v1/sync answered beside the framework rather than through it.

Every device calls sync every interval, so at 10,000 devices it is nearly all the traffic.
Profiling the FastAPI route at its ceiling showed the framework (its middleware layers,
routing, dependency solving, query and body parsing, response wrapping) costing several
times the handler itself. `SyncFastPath` answers exactly that one method and path with the
same service calls, the same pydantic model (`SyncRequest`, decoded straight from the bytes),
the same body limit and the same problem+json errors (see `fast_paths`).
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from signalbeam.protocol.device_v1 import SyncRequest
from signalbeam.server.api.device.v1.fast_paths import (
    BodyTooLarge,
    ClientGone,
    device_bearer,
    respond,
)
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import sync as sync_service

SYNC_PATH = "/api/device/v1/sync"


class SyncFastPath:
    """The sync endpoint as a bare ASGI app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limit = runtime.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(scope, receive, send, self._answer(scope, receive))

    async def _answer(self, scope: Scope, receive: Receive) -> bytes:
        # Who is asking before what they sent: a stranger learns nothing about the schema.
        device = await sync_service.authenticate(self.runtime, device_bearer(scope))
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
                raise BodyTooLarge(self.limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge(self.limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
