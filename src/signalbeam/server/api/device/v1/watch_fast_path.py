"""GET /api/device/v1/watch answered beside the framework: every online device holds one.

Held for up to a minute, a watch through FastAPI kept its whole middleware and dependency
stack alive (see `fast_paths`); this one keeps a request's scope, one coroutine chain and the
service's wait. The query is read by `WatchQuery`, which states the same rules as the
declared route, so a bad query gets the same 422 naming the parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import Receive, Scope, Send

from signalbeam.server.api.device.v1.fast_paths import device_bearer, respond
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import sync as sync_service

WATCH_PATH = "/api/device/v1/watch"
MAX_WATCH_SECONDS = 60.0
DEFAULT_WATCH_SECONDS = 30.0


class WatchQuery(BaseModel):
    """The watch's query parameters; unknown ones are ignored, as on every route."""

    model_config = ConfigDict(extra="ignore")

    generation: int = Field(ge=-1)
    timeout: float = Field(default=DEFAULT_WATCH_SECONDS, ge=0, le=MAX_WATCH_SECONDS)
    with_desired: bool = False
    with_sessions: bool = False


class WatchFastPath:
    """The watch endpoint as a bare ASGI app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(scope, receive, send, self._answer(scope))

    async def _answer(self, scope: Scope) -> bytes:
        # Who is asking before what they sent: a stranger learns nothing about the schema.
        device = await sync_service.authenticate(self.runtime, device_bearer(scope))
        query = read_query(scope)
        answer = await sync_service.watch(
            self.runtime,
            device,
            query.generation,
            query.timeout,
            with_desired=query.with_desired,
            with_sessions=query.with_sessions,
        )
        # Without `desired` unless asked for: agents that never ask refuse unknown fields.
        return answer.model_dump_json(exclude_none=True).encode()


def read_query(scope: Scope) -> WatchQuery:
    """The query string as a `WatchQuery`; errors are located in `query` like FastAPI's."""
    # A repeated parameter takes its last value, as Starlette's QueryParams.get does.
    raw = dict(parse_qsl(bytes(scope["query_string"]).decode("latin-1"), keep_blank_values=True))
    try:
        return WatchQuery.model_validate(raw)
    except ValidationError as err:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in err.errors()]
        raise ValidationError.from_exception_data("WatchQuery", errors) from None  # type: ignore[arg-type]
