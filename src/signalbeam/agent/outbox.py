"""The local SQLite outbox: samples and events waiting for the server, bounded, in order."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from signalbeam.agent.wire import (
    AgentEvent,
    Heartbeat,
    QueuedSample,
    TelemetryAck,
    TelemetryBatch,
    checked,
    convert,
    decode,
    encode,
    to_json,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Parse = Callable[[sqlite3.Connection, int, str], T | None]
OUTBOX_FILE = "outbox.db"
MAX_PENDING_EVENTS = 1000
SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxCounts:
    """How much is waiting, and how many samples were dropped and not yet reported."""

    samples: int
    events: int
    dropped_samples: int


@dataclass(frozen=True)
class QueuedAhead:
    """A sample queued before its sync: its seq, and whether older samples still wait."""

    seq: int
    backlog: bool


class Outbox:
    """Samples (bounded: the oldest go first, counted) and events (never dropped) in SQLite.

    Methods block on disk I/O; the agent calls them through `asyncio.to_thread`, and the lock
    keeps the worker threads from sharing the connection at the same time.
    """

    def __init__(self, path: Path, max_samples: int = 10_000) -> None:
        self.path = path
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._db = _open(path)
        # What could not be written (a full disk): retried on the next write, never silent.
        self._unsaved_drops = 0
        self._pending_events: list[str] = []
        self._failing = False

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add_sample(self, heartbeat: Heartbeat) -> bool:
        """Queue a sample; drop the oldest beyond the bound. False when the disk refused."""
        body = _sample_body(heartbeat)
        with self._lock, self._writing("sample") as ok:
            self._db.execute("INSERT INTO samples (body) VALUES (?)", (body,))
            self._trim()
        if not ok:
            self._unsaved_drops += 1
        return bool(ok)

    def add_sample_ahead(self, heartbeat: Heartbeat) -> QueuedAhead | None:
        """Queue a sample before it is sent in a sync: its seq, and whether older ones wait.

        Written first so the sample has an identity that outlives a lost answer or a crash:
        the server stores it once, by seq, whichever way it arrives. None if the disk refused.
        """
        body = _sample_body(heartbeat)
        queued: QueuedAhead | None = None
        with self._lock, self._writing("sample", "sending it in the sync only") as ok:
            seq = self._db.execute("INSERT INTO samples (body) VALUES (?)", (body,)).lastrowid
            self._trim()
            older = self._db.execute("SELECT 1 FROM samples WHERE seq < ? LIMIT 1", (seq,))
            if seq is not None:
                queued = QueuedAhead(seq, backlog=older.fetchone() is not None)
        # Not written (a full disk): the caller sends the sample the old way, without a seq.
        return queued if ok else None

    def remove_sample(self, seq: int) -> None:
        """Forget a sample the server has stored (it came in a sync that was answered)."""
        with self._lock, self._forgetting():
            self._db.execute("DELETE FROM samples WHERE seq = ?", (seq,))

    def add_event(
        self, type_: str, message: str, data: dict[str, Any], occurred_at: datetime
    ) -> bool:
        """Queue an agent event; it stays until the server acknowledges it."""
        # Built (and validated) before it joins the queue, so a bad event fails here, alone.
        body = _event_body(type_, message, data, occurred_at)
        with self._lock:
            self._pending_events.append(body)
            return self._write_pending_events()

    def batch(self, limit: int = 500) -> TelemetryBatch | None:
        """The oldest events, then samples, at most `limit` items; None when nothing waits."""
        with self._lock:
            self._write_pending_events()
            events = self._rows("events", limit, _event)
            samples = self._rows("samples", limit - len(events), _sample)
            dropped = self._dropped()
        if not events and not samples and not dropped:
            return None
        return TelemetryBatch(samples=samples, events=events, dropped_samples=dropped)

    def acknowledge(self, batch: TelemetryBatch, ack: TelemetryAck) -> int | None:
        """Delete what the server stored (never beyond what this batch carried); say how much.

        None when the disk refused even the delete (SQLite needs room to journal it): the
        items stay and go again later, and the server, which stores each seq once, ignores them.
        """
        samples_through = min(ack.samples_through, max((s.seq for s in batch.samples), default=0))
        events_through = min(ack.events_through, max((e.seq for e in batch.events), default=0))
        deleted = 0
        with self._lock, self._forgetting() as ok:
            samples = self._db.execute("DELETE FROM samples WHERE seq <= ?", (samples_through,))
            events = self._db.execute("DELETE FROM events WHERE seq <= ?", (events_through,))
            self._add_dropped(-batch.dropped_samples)
            deleted = samples.rowcount + events.rowcount
        # The deletes themselves may work; it is the commit a full disk refuses.
        return deleted if ok else None

    def discard(self, batch: TelemetryBatch) -> None:
        """Delete every item of a batch the server refuses for good, so the rest can move."""
        with self._lock, self._db:
            for sample in batch.samples:
                self._db.execute("DELETE FROM samples WHERE seq = ?", (sample.seq,))
            for event in batch.events:
                self._db.execute("DELETE FROM events WHERE seq = ?", (event.seq,))

    def counts(self) -> OutboxCounts:
        """How many samples and events wait, and the unreported drop count."""
        with self._lock:
            samples = self._count("samples")
            events = self._count("events") + len(self._pending_events)
            return OutboxCounts(samples, events, self._dropped() + self._unsaved_drops)

    @contextlib.contextmanager
    def _writing(self, what: str, instead: str = "counting it as lost") -> Iterator[list[bool]]:
        # The yielded list reads as true only when the block committed.
        ok: list[bool] = []
        try:
            with self._db:
                yield ok
                if self._unsaved_drops:
                    self._add_dropped(self._unsaved_drops)
            self._unsaved_drops = 0
            ok.append(True)
            if self._failing:
                log.info("the outbox %s accepts writes again", self.path)
            self._failing = False
        except sqlite3.Error as err:
            if not self._failing:
                log.error("cannot queue a %s in %s (%s); %s", what, self.path, err, instead)
            self._failing = True

    @contextlib.contextmanager
    def _forgetting(self) -> Iterator[list[bool]]:
        # A delete that fails keeps what the server already has: sent again, stored once. The
        # yielded list reads as true only when the block committed.
        ok: list[bool] = []
        try:
            with self._db:
                yield ok
            ok.append(True)
        except sqlite3.Error as err:
            if not self._failing:
                log.error(
                    "cannot update %s (%s); what was delivered is sent again later, and the "
                    "server stores it once",
                    self.path,
                    err,
                )
            self._failing = True

    def _write_pending_events(self) -> bool:
        if not self._pending_events:
            # Writing nothing proves nothing: a full disk would seem to take writes again.
            return True
        with self._writing("event") as ok:
            for body in self._pending_events:
                self._db.execute("INSERT INTO events (body) VALUES (?)", (body,))
        if ok:
            self._pending_events.clear()
        else:
            del self._pending_events[:-MAX_PENDING_EVENTS]
        return bool(ok)

    def _trim(self) -> None:
        excess = self._count("samples") - self.max_samples
        if excess > 0:
            self._db.execute(
                "DELETE FROM samples WHERE seq IN (SELECT seq FROM samples ORDER BY seq LIMIT ?)",
                (excess,),
            )
            self._add_dropped(excess)

    def _count(self, table: str) -> int:
        row = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    def _dropped(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def _add_dropped(self, delta: int) -> None:
        value = max(0, self._dropped() + delta)
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (value,),
        )

    def _rows(self, table: str, limit: int, parse: Parse[T]) -> list[T]:
        if limit <= 0:
            return []
        query = f"SELECT seq, body FROM {table} ORDER BY seq LIMIT ?"  # noqa: S608
        rows = self._db.execute(query, (limit,)).fetchall()
        parsed = (parse(self._db, seq, body) for seq, body in rows)
        return [item for item in parsed if item is not None]


def _sample_body(heartbeat: Heartbeat) -> str:
    # Only the sensors that answered: most rows are a handful of numbers.
    present = {k: v for k, v in to_json(heartbeat).items() if v is not None}
    return encode(present).decode()


def _event_body(type_: str, message: str, data: dict[str, Any], occurred_at: datetime) -> str:
    # seq=1 is a placeholder: the row id becomes the event's sequence number when it is sent.
    event = AgentEvent(
        seq=1, type=type_, message=message[:2000], data=data, occurred_at=occurred_at
    )
    stored = to_json(checked(event))
    del stored["seq"]
    return encode(stored).decode()


def _event(db: sqlite3.Connection, seq: int, body: str) -> AgentEvent | None:
    try:
        return convert({**json.loads(body), "seq": seq}, AgentEvent)
    except (msgspec.ValidationError, ValueError, TypeError):
        _unreadable(db, "events", seq)
        return None


def _sample(db: sqlite3.Connection, seq: int, body: str) -> QueuedSample | None:
    try:
        return QueuedSample(seq=seq, heartbeat=decode(body, Heartbeat))
    except msgspec.DecodeError:
        _unreadable(db, "samples", seq)
        return None


def _unreadable(db: sqlite3.Connection, table: str, seq: int) -> None:
    log.error("outbox %s row %d is unreadable; deleting it so the rest can be sent", table, seq)
    with db:
        db.execute(f"DELETE FROM {table} WHERE seq = ?", (seq,))  # noqa: S608


def _connect(path: Path) -> sqlite3.Connection:
    fresh = not path.exists()
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    with db:
        db.executescript(SCHEMA)
        if fresh:
            _seed(db)
    return db


def _seed(db: sqlite3.Connection) -> None:
    # The server keeps, per device, the highest sequence number it stored and ignores anything
    # at or below it. Starting a new outbox at the current time in milliseconds keeps a
    # reinstalled agent (same device id, fresh state dir) from having its items ignored.
    start = int(time.time() * 1000)
    db.executemany(
        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
        [("samples", start), ("events", start)],
    )


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _connect(path)
    except sqlite3.OperationalError:
        raise  # cannot open or write (permissions, full disk): not damage, keep the file
    except sqlite3.DatabaseError as err:
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        log.error("outbox %s is unusable (%s); moved it to %s and starting empty", path, err, aside)
        path.rename(aside)
        return _connect(path)


def read_counts(path: Path) -> OutboxCounts | None:
    """Counts from an outbox another process may be writing; None when there is none."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        samples = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return OutboxCounts(int(samples), int(events), int(row[0]) if row else 0)
    except sqlite3.Error:
        return None
    finally:
        db.close()
