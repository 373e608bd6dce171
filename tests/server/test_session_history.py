"""Sessions read back from their events: paired by id, newest first, running or ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from signalbeam.server.db.models import Event
from signalbeam.server.services.session_history import summarize

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(type_: str, minute: int, **data: Any) -> Event:
    return Event(
        type=f"session.{type_}",
        actor="user:ola",
        message="",
        data=data,
        created_at=NOON + timedelta(minutes=minute),
    )


def test_events_pair_into_sessions_newest_first() -> None:
    events = [  # newest first, as the activity log reads
        event("started", 9, session="c", kind="shell", unit="web"),
        event("ended", 8, session="b", kind="exec", exit_code=3, seconds=30.0, bytes_from_device=9),
        event("ended", 5, session="a", kind="shell", exit_code=0, recording_bytes=120),
        event("started", 4, session="a", kind="shell"),
        event("started", 1, kind="exec"),  # no session id: not a session's event
    ]
    running, older, recorded = summarize(events)
    assert (running.session, running.running, running.unit, running.recorded) == (
        "c",
        True,
        "web",
        False,
    )
    # Its start fell out of the window: the start is the end minus how long it ran.
    assert older.started_at == NOON + timedelta(minutes=8) - timedelta(seconds=30)
    assert (older.exit_code, older.bytes_from_device, older.recorded) == (3, 9, False)
    assert (recorded.actor, recorded.started_at, recorded.recorded) == (
        "ola",
        NOON + timedelta(minutes=4),
        True,
    )
