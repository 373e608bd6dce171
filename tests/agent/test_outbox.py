"""The SQLite outbox: bounded samples with counted drops, events kept, order, acknowledgement."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from signalbeam.agent.outbox import Outbox, read_counts
from signalbeam.agent.wire import DiskUsage, Heartbeat, TelemetryAck

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def beat(n: int) -> Heartbeat:
    return Heartbeat(cpu_percent=float(n % 100), sampled_at=T0 + timedelta(seconds=n))


def fill(outbox: Outbox, samples: int, events: int = 0) -> None:
    for n in range(samples):
        assert outbox.add_sample(beat(n))
    for n in range(events):
        assert outbox.add_event("agent.test", f"event {n}", {"n": n}, T0 + timedelta(seconds=n))


def test_full_outbox_drops_the_oldest_samples_and_counts_them(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_samples=5)
    fill(outbox, samples=8, events=3)
    counts = outbox.counts()
    assert (counts.samples, counts.events, counts.dropped_samples) == (5, 3, 3)
    batch = outbox.batch(100)
    assert batch is not None
    assert [s.heartbeat.sampled_at for s in batch.samples] == [
        T0 + timedelta(seconds=n) for n in range(3, 8)
    ], "the newest samples survive, oldest first"
    assert [e.message for e in batch.events] == ["event 0", "event 1", "event 2"]
    assert batch.dropped_samples == 3


def test_batches_are_bounded_ordered_and_events_go_first(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    fill(outbox, samples=6, events=3)
    batch = outbox.batch(4)
    assert batch is not None
    assert len(batch.events) == 3 and len(batch.samples) == 1
    seqs = [s.seq for s in batch.samples]
    assert seqs == sorted(seqs)
    assert [e.seq for e in batch.events] == sorted(e.seq for e in batch.events)


def test_acknowledged_rows_are_deleted_and_the_drop_count_is_reported_once(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_samples=3)
    fill(outbox, samples=5, events=2)
    batch = outbox.batch(500)
    assert batch is not None and batch.dropped_samples == 2
    # The server stored everything but the last sample.
    ack = TelemetryAck(samples_through=batch.samples[-2].seq, events_through=batch.events[-1].seq)
    assert outbox.acknowledge(batch, ack) == 4
    rest = outbox.batch(500)
    assert rest is not None
    assert [s.seq for s in rest.samples] == [batch.samples[-1].seq]
    assert rest.events == [] and rest.dropped_samples == 0


def test_an_ack_beyond_the_batch_never_deletes_unsent_rows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    fill(outbox, samples=4)
    batch = outbox.batch(2)
    assert batch is not None
    outbox.acknowledge(batch, TelemetryAck(samples_through=10**15, events_through=10**15))
    assert outbox.counts().samples == 2


def test_contents_and_sequence_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    fill(first, samples=2, events=1)
    before = first.batch(500)
    first.close()
    second = Outbox(path)
    after = second.batch(500)
    assert before == after
    second.add_sample(beat(99))
    batch = second.batch(500)
    assert batch is not None and batch.samples[-1].seq > batch.samples[-2].seq


def test_a_new_outbox_numbers_from_the_clock_so_a_reinstall_is_not_ignored(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    fill(outbox, samples=1, events=1)
    batch = outbox.batch(500)
    assert batch is not None
    assert batch.samples[0].seq > int((time.time() - 60) * 1000)
    assert batch.events[0].seq > int((time.time() - 60) * 1000)


def test_an_empty_outbox_has_nothing_to_send(tmp_path: Path) -> None:
    assert Outbox(tmp_path / "outbox.db").batch(500) is None
    assert read_counts(tmp_path / "missing.db") is None


def test_unreadable_rows_are_skipped_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    fill(outbox, samples=2)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO samples (body) VALUES ('{not json')")
    fill(outbox, samples=1)
    batch = outbox.batch(500)
    assert batch is not None and len(batch.samples) == 3
    assert outbox.counts().samples == 3


def test_a_damaged_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database" * 100)
    outbox = Outbox(path)
    fill(outbox, samples=1)
    assert outbox.counts().samples == 1
    assert len(list(tmp_path.glob("outbox.db.damaged-*"))) == 1


def test_discard_removes_a_refused_item(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    fill(outbox, samples=2, events=1)
    first = outbox.batch(1)
    assert first is not None and len(first.events) == 1
    outbox.discard(first)
    assert outbox.counts().events == 0 and outbox.counts().samples == 2


def test_counts_can_be_read_while_the_agent_holds_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, max_samples=2)
    fill(outbox, samples=3, events=1)
    counts = read_counts(path)
    assert counts is not None
    assert (counts.samples, counts.events, counts.dropped_samples) == (2, 1, 1)


def test_a_full_disk_loses_samples_counted_and_keeps_events_in_memory(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    fill(outbox, samples=1)
    # SQLite answers exactly as on a full disk ("database or disk is full") once the file
    # may not grow any more.
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
    outbox._db.execute(f"PRAGMA max_page_count = {pages}")
    big = Heartbeat(disks=[DiskUsage(mount=f"/m{n}" + "x" * 200, percent=1.0) for n in range(60)])
    refused = [outbox.add_sample(big) for _ in range(20)].count(False)
    assert refused > 0
    assert not outbox.add_event("agent.test", "while full", {"pad": "x" * 5000}, T0)
    assert outbox.counts().dropped_samples >= refused
    assert outbox.counts().events == 1, "the event waits in memory"

    outbox._db.execute("PRAGMA max_page_count = 1073741823")
    assert outbox.add_event("agent.test", "after", {}, T0)
    batch = outbox.batch(500)
    assert batch is not None
    assert [e.message for e in batch.events] == ["while full", "after"]
    assert batch.dropped_samples >= refused, "lost samples are reported, not silent"
