"""The device page's Logs, Terminal and Recent sessions panels: open a session, stream it in
the browser, list the device's sessions and replay a recorded terminal.

The browser cannot set an Authorization header on a WebSocket, so the stream here is
authenticated by the dashboard's session cookie, and only from a page of this same origin
(a cookie alone would let any site open it: cross-site WebSocket hijacking).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError, InvalidInput, Unauthenticated
from signalbeam.protocol.sessions import CLOSE_NOT_FOUND, CLOSE_REFUSED, LOGS, SHELL, control
from signalbeam.server.api import problems
from signalbeam.server.api.deps import RuntimeDep
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import remote_sessions, session_history
from signalbeam.server.services import users as user_service
from signalbeam.server.services.context import Actor
from signalbeam.server.services.remote_sessions import SessionRequest
from signalbeam.server.services.session_recordings import CAST_TYPE
from signalbeam.server.web import session as web_session
from signalbeam.server.web.deps import CurrentUser, PostedForm, WebRoute
from signalbeam.server.web.devices import device_url
from signalbeam.server.web.forms import Form
from signalbeam.server.web.render import render

router = APIRouter(prefix="/devices", route_class=WebRoute)


@router.get("/{device_id}/sessions", include_in_schema=False)
async def recent(
    request: Request, device_id: str, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """The Recent sessions list (a fragment): who ran what, how it ended, what was recorded."""
    sessions = await session_history.recent_sessions(runtime, user.actor, device_id)
    context = {"sessions": sessions, "device_url": device_url(device_id)}
    return render(request, "device_sessions_list.html", context)


@router.get("/{device_id}/sessions/{session_id}/recording", include_in_schema=False)
async def recording(
    device_id: str, session_id: str, runtime: RuntimeDep, user: CurrentUser
) -> Response:
    """The cast the Replay button plays; operators and admins only, like the API's."""
    try:
        path = await session_history.device_recording(runtime, user.actor, device_id, session_id)
    except DomainError as err:
        return problems.domain_problem(err)  # read by a script, not shown as a page
    return FileResponse(path, media_type=CAST_TYPE, headers={"Cache-Control": "no-store"})


@router.post("/{device_id}/sessions", include_in_schema=False)
async def open_session(
    device_id: str, runtime: RuntimeDep, user: CurrentUser, form: PostedForm
) -> JSONResponse:
    """Ask the device for logs or a terminal; answers the stream's path, or why not."""
    try:
        request = _request(form)
        session = await remote_sessions.open_session(runtime, user.actor, device_id, request)
    except DomainError as err:
        return problems.domain_problem(err)
    path = f"/devices/{quote(device_id, safe='')}/sessions/{session.id}/stream"
    return JSONResponse({"session": session.id, "stream": path}, status_code=201)


def _request(form: Form) -> SessionRequest:
    kind = form.get("kind")
    if kind == LOGS:
        since = form.get("since")
        return SessionRequest(
            kind=LOGS,
            unit=form.get("unit") or None,
            tail=_number(form, "tail", 200),
            since_seconds=parse_duration(since, field="since").total_seconds() if since else None,
            grep=form.get("grep") or None,
            follow=form.get("follow") == "on",
        )
    if kind == SHELL:
        rows, cols = _number(form, "rows", 24), _number(form, "cols", 80)
        return SessionRequest(
            kind=SHELL, unit=form.get("unit") or None, tty=True, rows=rows, cols=cols
        )
    raise InvalidInput("the dashboard opens logs or a shell", field="kind")


def _number(form: Form, name: str, default: int) -> int:
    text = form.get(name)
    if not text:
        return default
    if not text.isdigit() or not 0 <= int(text) <= 100_000:
        raise InvalidInput(f"{name} must be a whole number from 0 to 100000", field=name)
    return int(text)


@router.websocket("/{device_id}/sessions/{session_id}/stream")
async def stream(websocket: WebSocket, device_id: str, session_id: str) -> None:
    """The browser's end of a session it asked for."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        actor = await _actor(runtime, websocket)
    except DomainError as err:
        await websocket.send_text(control("error", detail=err.detail))
        await websocket.close(CLOSE_REFUSED)
        return
    session = runtime.broker.claim_for_operator(session_id, actor)
    if session is None or session.device_id != device_id:
        await websocket.send_text(control("error", detail="this session ended or is not yours"))
        await websocket.close(CLOSE_NOT_FOUND)
        return
    await remote_sessions.serve_operator(runtime, session, websocket)


async def _actor(runtime: Runtime, websocket: WebSocket) -> Actor:
    origin = urlsplit(websocket.headers.get("origin", "")).netloc
    if not origin or origin != websocket.headers.get("host"):
        raise Unauthenticated("a session stream opens only from the dashboard's own pages")
    session = web_session.decode(runtime, websocket.cookies.get(web_session.COOKIE))
    if session is None:
        raise Unauthenticated("sign in to the dashboard again")
    return await user_service.authenticate(runtime, session.token)
