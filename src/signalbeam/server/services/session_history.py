"""A device's recent sessions, read back from its session.started and session.ended events.

The activity log already holds everything a list needs (who, kind, command, exit code, bytes,
whether a recording was kept), so sessions get no table of their own: each one is the pair of
events that carry its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from signalbeam.domain.errors import NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.server.db.models import Event
from signalbeam.server.repositories.events import EventQuery
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.devices import find_device
from signalbeam.server.services.remote_sessions import recording_file

RECENT = 20
SESSION_EVENTS = (EventType.SESSION_STARTED.value, EventType.SESSION_ENDED.value)


@dataclass(frozen=True)
class SessionSummary:
    """One session on a device, running or ended, as its events tell it."""

    session: str
    kind: str
    actor: str
    started_at: datetime
    unit: str | None = None
    command: str | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    bytes_from_device: int = 0
    bytes_to_device: int = 0
    seconds: float | None = None
    recording_bytes: int | None = None

    @property
    def running(self) -> bool:
        """No session.ended event yet."""
        return self.ended_at is None

    @property
    def recorded(self) -> bool:
        """Ended with a recording to replay (terminal sessions only)."""
        return self.ended_at is not None and bool(self.recording_bytes)


def summarize(events: Iterable[Event]) -> list[SessionSummary]:
    """Pair each session's events (in any order) into summaries, newest start first."""
    found: dict[str, SessionSummary] = {}
    for event in events:
        data: dict[str, Any] = event.data or {}
        session = data.get("session")
        if not isinstance(session, str):
            continue
        known = found.get(session) or _first(event, data, session)
        if event.type == EventType.SESSION_ENDED.value:
            known = _ended(known, event, data)
        else:
            known = replace(known, started_at=event.created_at)
        found[session] = known
    return sorted(found.values(), key=lambda item: item.started_at, reverse=True)


def _first(event: Event, data: dict[str, Any], session: str) -> SessionSummary:
    # Either event carries who and what. Until its session.started is read (the log reads
    # newest first, or the start fell out of the window), the start is the end minus how long
    # the session ran.
    seconds = data.get("seconds")
    started = event.created_at
    if event.type == EventType.SESSION_ENDED.value and isinstance(seconds, int | float):
        started -= timedelta(seconds=seconds)
    return SessionSummary(
        session=session,
        kind=str(data.get("kind") or "?"),
        actor=event.actor.partition(":")[2] or event.actor,
        started_at=started,
        unit=data.get("unit"),
        command=data.get("command"),
    )


def _ended(known: SessionSummary, event: Event, data: dict[str, Any]) -> SessionSummary:
    return replace(
        known,
        ended_at=event.created_at,
        exit_code=data.get("exit_code"),
        error=data.get("error"),
        bytes_from_device=int(data.get("bytes_from_device") or 0),
        bytes_to_device=int(data.get("bytes_to_device") or 0),
        seconds=data.get("seconds"),
        recording_bytes=data.get("recording_bytes"),
    )


async def recent_sessions(
    runtime: Runtime, actor: Actor, device_id: str, limit: int = RECENT
) -> list[SessionSummary]:
    """The device's last `limit` sessions, newest first."""
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        # Two events per session, and a few more for sessions still running.
        query = EventQuery(device_pk=device.id, types=SESSION_EVENTS, limit=2 * limit + 10)
        events = await uow.events.search(query)
    return summarize(events)[:limit]


async def device_recording(runtime: Runtime, actor: Actor, device_id: str, session_id: str) -> Path:
    """The recording of a terminal session on this device, for operators and admins.

    A session of another device (or another tenant's) is not found, as if it did not exist.
    """
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        device = await find_device(uow, device_id)
        query = EventQuery(
            device_pk=device.id, types=(EventType.SESSION_ENDED.value,), session=session_id, limit=1
        )
        ended = await uow.events.search(query)
    if not ended:
        raise NotFound(
            f"no ended session {session_id!r} on device {device_id}; the device page lists "
            "its recent sessions",
            field="session_id",
        )
    return recording_file(runtime, actor, session_id)
