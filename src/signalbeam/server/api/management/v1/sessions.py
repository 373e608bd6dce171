"""Sessions on devices: ask for logs, exec or a shell, then stream it over a WebSocket."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from fastapi.responses import FileResponse

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError, InvalidInput
from signalbeam.protocol.sessions import (
    CLOSE_NOT_FOUND,
    CLOSE_REFUSED,
    COPY,
    EXEC,
    FORWARD,
    LOGS,
    PUT,
    SHELL,
    control,
)
from signalbeam.server.api.deps import CurrentActor, RuntimeDep, bearer_secret
from signalbeam.server.api.management.v1.session_schemas import (
    CopyRequest,
    ExecRequest,
    ForwardRequest,
    LogsRequest,
    SessionPublic,
)
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import remote_sessions
from signalbeam.server.services import users as user_service
from signalbeam.server.services.remote_sessions import SessionRequest
from signalbeam.server.services.session_broker import OFFER_SECONDS, OfferedSession
from signalbeam.server.services.session_recordings import CAST_TYPE

router = APIRouter(tags=["sessions"])


@router.post("/devices/{device_id}:logs", response_model=SessionPublic, status_code=201)
async def logs(
    device_id: str, body: LogsRequest, runtime: RuntimeDep, actor: CurrentActor
) -> SessionPublic:
    """Show a unit's logs (every role); without `unit`, list the units the device can show."""
    since = (
        parse_duration(body.since, field="since").total_seconds()
        if body.since is not None
        else None
    )
    request = SessionRequest(
        kind=LOGS,
        unit=body.unit,
        tail=body.tail,
        since_seconds=since,
        grep=body.grep,
        follow=body.follow,
    )
    return _public(await remote_sessions.open_session(runtime, actor, device_id, request))


@router.post("/devices/{device_id}:exec", response_model=SessionPublic, status_code=201)
async def exec_(
    device_id: str, body: ExecRequest, runtime: RuntimeDep, actor: CurrentActor
) -> SessionPublic:
    """Run a command (or, with `tty`, a terminal) on the device's host or in one of its units."""
    timeout = (
        parse_duration(body.timeout, field="timeout").total_seconds()
        if body.timeout is not None
        else None
    )
    if not body.command and not body.tty:
        raise InvalidInput(
            'give the command to run as a list, e.g. ["uptime"], or set tty=true for a shell',
            field="command",
        )
    request = SessionRequest(
        kind=SHELL if body.tty else EXEC,
        unit=body.unit,
        command=tuple(body.command),
        timeout_seconds=timeout,
        tty=body.tty,
        rows=body.rows,
        cols=body.cols,
    )
    return _public(await remote_sessions.open_session(runtime, actor, device_id, request))


@router.post("/devices/{device_id}:copy", response_model=SessionPublic, status_code=201)
async def copy(
    device_id: str, body: CopyRequest, runtime: RuntimeDep, actor: CurrentActor
) -> SessionPublic:
    """Put a file on the device (stream it as stdin) or get one (it arrives as stdout)."""
    if body.direction == PUT and (body.size is None or body.sha256 is None):
        raise InvalidInput("a put states the file's size and sha256 first", field="sha256")
    request = SessionRequest(
        kind=COPY, path=body.path, direction=body.direction, size=body.size, sha256=body.sha256
    )
    return _public(await remote_sessions.open_session(runtime, actor, device_id, request))


@router.post("/devices/{device_id}:forward", response_model=SessionPublic, status_code=201)
async def forward(
    device_id: str, body: ForwardRequest, runtime: RuntimeDep, actor: CurrentActor
) -> SessionPublic:
    """Open one TCP connection from the device to host:port; its bytes flow over the stream."""
    request = SessionRequest(kind=FORWARD, host=body.host, port=body.port)
    return _public(await remote_sessions.open_session(runtime, actor, device_id, request))


@router.websocket("/sessions/{session_id}/stream")
async def stream(websocket: WebSocket, session_id: str) -> None:
    """The operator's end of a session they asked for (same API token)."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    header = websocket.headers.get("authorization", "")
    try:
        actor = await user_service.authenticate(runtime, bearer_secret(header, "API token"))
    except DomainError as err:
        await websocket.send_text(control("error", detail=err.detail))
        await websocket.close(CLOSE_REFUSED)
        return
    session = runtime.broker.claim_for_operator(session_id, actor)
    if session is None:
        detail = "no such session for you (it ended, expired, or another client attached)"
        await websocket.send_text(control("error", detail=detail))
        await websocket.close(CLOSE_NOT_FOUND)
        return
    await remote_sessions.serve_operator(runtime, session, websocket)


@router.get(
    "/sessions/{session_id}/recording",
    response_class=FileResponse,
    responses={200: {"content": {CAST_TYPE: {}}, "description": "an asciinema v2 cast"}},
)
async def recording(session_id: str, runtime: RuntimeDep, actor: CurrentActor) -> FileResponse:
    """What a terminal session showed, to replay (`asciinema play`, or the device page)."""
    path = remote_sessions.recording_file(runtime, actor, session_id)
    return FileResponse(path, media_type=CAST_TYPE, filename=f"{session_id}.cast")


def _public(session: OfferedSession) -> SessionPublic:
    return SessionPublic(
        session=session.id,
        kind=session.kind,
        device_id=session.device_id,
        stream=f"/api/v1/sessions/{session.id}/stream",
        expires_in_seconds=OFFER_SECONDS,
    )
