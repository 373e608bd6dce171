"""Sessions on devices: who may open them, offering them to the device, relaying, recording."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.websockets import WebSocket

from signalbeam.domain.durations import coarse_duration
from signalbeam.domain.errors import Conflict, Forbidden, NotFound
from signalbeam.domain.model import EventType, Presence, Role
from signalbeam.domain.remote_access import RemoteAccessPolicy, check_session, command_line
from signalbeam.protocol.sessions import CLOSE_TIMEOUT, COPY, FORWARD, LOGS, control, open_message
from signalbeam.server.db.models import Device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.devices import find_device
from signalbeam.server.services.session_broker import OfferedSession
from signalbeam.server.services.session_recordings import Recording, recording_path
from signalbeam.server.services.session_relay import Outcome, close_both, relay

# How long the operator waits for the device to connect once they attached.
DEVICE_CONNECT_SECONDS = 10.0


@dataclass(frozen=True)
class SessionRequest:
    """What the operator wants to run or see on the device."""

    kind: str
    unit: str | None = None
    command: tuple[str, ...] = ()
    timeout_seconds: float | None = None
    tty: bool = False
    rows: int = 24
    cols: int = 80
    tail: int | None = None
    since_seconds: float | None = None
    grep: str | None = None
    follow: bool = False
    path: str | None = None
    direction: str | None = None
    size: int | None = None
    sha256: str | None = None
    host: str | None = None
    port: int | None = None


async def remote_access_policy(uow: UnitOfWork) -> RemoteAccessPolicy:
    """The tenant's remote-access settings (defaults when never set)."""
    row = await uow.signing.policy()
    if row is None:
        return RemoteAccessPolicy()
    return RemoteAccessPolicy(enabled=row.remote_access, exec_allow=tuple(row.exec_allow))


async def open_session(
    runtime: Runtime, actor: Actor, device_id: str, request: SessionRequest
) -> OfferedSession:
    """Check the rules and the device, then offer the session to it; refusals are recorded."""
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        try:
            check_session(
                await remote_access_policy(uow), actor.role, request.kind, request.command
            )
        except Forbidden as err:
            message = f"{_what(request)} on {device_id} refused: {err.detail}"
            uow.record(EventType.SESSION_REFUSED, message, device=device, data=_summary(request))
            await uow.commit()
            raise
        check_reachable(device)
    session = _offered(runtime, actor, device, request)
    runtime.broker.offer(session)
    return session


def check_reachable(device: Device) -> None:
    """Refuse at once, saying since when, if the device cannot take a session now."""
    if device.presence == Presence.ONLINE.value:
        return
    if device.last_seen_at is None:
        raise Conflict(f"device {device.device_id} has never connected", field="device_id")
    seen = coarse_duration((datetime.now(UTC) - device.last_seen_at).total_seconds())
    raise Conflict(
        f"device {device.device_id} is offline (last seen {seen} ago)", field="device_id"
    )


def _offered(
    runtime: Runtime, actor: Actor, device: Device, request: SessionRequest
) -> OfferedSession:
    session_id = runtime.broker.new_id()
    fields = asdict(request)
    fields["command"] = list(request.command)
    kind = fields.pop("kind")
    frame = open_message(session_id, kind, actor=str(actor), **fields)
    return OfferedSession(
        id=session_id,
        tenant_id=actor.tenant_id,
        device_pk=device.id,
        device_id=device.device_id,
        actor=actor,
        kind=kind,
        open_frame=frame,
        summary=_summary(request),
        terminal=(request.cols, request.rows) if request.tty else None,
    )


async def serve_operator(runtime: Runtime, session: OfferedSession, operator: WebSocket) -> None:
    """Wait for the device, hand it the request, relay, and record how it went."""
    try:
        device = await _device_socket(session)
        if device is None:
            detail = (
                f"{session.device_id} did not connect for the session within "
                f"{DEVICE_CONNECT_SECONDS:g} s; its agent may be too old for sessions, or its "
                "network is down (check `signalbeam devices show`)"
            )
            await operator.send_text(control("error", detail=detail))
            await operator.close(CLOSE_TIMEOUT)
            return
        await device.send_text(session.open_frame)
        await operator.send_text(control("started", session=session.id))
        # Written beside the relay, not before it: the first bytes need not wait for the
        # database. It is committed before the session's end is (awaited below).
        recorded = asyncio.create_task(
            _record(runtime, session, EventType.SESSION_STARTED, _started(session), {})
        )
        started = asyncio.get_running_loop().time()
        recording = _recording(runtime, session)
        output = recording.output if recording is not None else None
        outcome = await relay(operator, device, session.device_id, session.ended, output)
        result: dict[str, object] = {
            **asdict(outcome),
            "seconds": round(asyncio.get_running_loop().time() - started, 3),
        }
        del result["restarting"]
        await recorded
        if recording is not None:
            result["recording_bytes"] = await recording.close()
        await _record(runtime, session, EventType.SESSION_ENDED, _ended(session, outcome), result)
        await close_both(operator, device, outcome)
    finally:
        runtime.broker.end(session)


def recording_file(runtime: Runtime, actor: Actor, session_id: str) -> Path:
    """The recording of one of the tenant's terminal sessions (operators and admins)."""
    actor.require(Role.OPERATOR)
    path = recording_path(runtime.settings.data_dir, actor.tenant_id, session_id)
    if not path.is_file():
        raise NotFound(
            f"no recording of session {session_id!r}; only terminal sessions (signalbeam shell) "
            "are recorded, and the ids are in the session.ended events",
            field="session_id",
        )
    return path


def _recording(runtime: Runtime, session: OfferedSession) -> Recording | None:
    if session.terminal is None:
        return None
    cols, rows = session.terminal
    path = recording_path(runtime.settings.data_dir, session.tenant_id, session.id)
    title = f"{session.kind} on {session.device_id} by {session.actor.name}"
    return Recording(path, cols=cols, rows=rows, title=title)


async def _device_socket(session: OfferedSession) -> WebSocket | None:
    await asyncio.wait({session.device}, timeout=DEVICE_CONNECT_SECONDS)
    if not session.device.done() or session.device.cancelled():
        return None
    return session.device.result()


async def _record(
    runtime: Runtime,
    session: OfferedSession,
    type_: EventType,
    message: str,
    result: dict[str, object],
) -> None:
    data = {"session": session.id, "kind": session.kind, **session.summary, **result}
    async with runtime.unit_of_work(session.actor) as uow:
        device = await uow.devices.get(session.device_id)
        uow.record(type_, message, device=device, data=data)
        await uow.commit()


def _summary(request: SessionRequest) -> dict[str, object]:
    if request.kind == COPY:
        return {"path": request.path, "direction": request.direction, "sha256": request.sha256}
    if request.kind == FORWARD:
        return {"host": request.host, "port": request.port}
    summary: dict[str, object] = {"unit": request.unit}
    if request.kind != LOGS:
        summary["command"] = command_line(request.command) if request.command else None
        summary["tty"] = request.tty
    return summary


def _what(request: SessionRequest) -> str:
    if request.kind == LOGS:
        return f"logs of {request.unit or 'the unit list'}"
    if request.kind == COPY:
        return f"copy ({request.direction}) of {request.path}"
    if request.kind == FORWARD:
        return f"port forward to {request.host}:{request.port}"
    target = f" in {request.unit}" if request.unit else ""
    shown = command_line(request.command) if request.command else "a shell"
    return f"{request.kind} {shown}{target}"


def _started(session: OfferedSession) -> str:
    return f"{session.actor.name} started {session.kind} on {session.device_id}"


def _ended(session: OfferedSession, outcome: Outcome) -> str:
    how = (
        f"exit code {outcome.exit_code}"
        if outcome.exit_code is not None
        else (outcome.error or "closed")
    )
    return (
        f"{session.kind} on {session.device_id} by {session.actor.name} ended: {how} "
        f"({outcome.bytes_from_device} bytes out, {outcome.bytes_to_device} bytes in)"
    )
