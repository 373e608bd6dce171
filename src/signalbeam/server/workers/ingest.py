"""Group commit for syncs: many heartbeats, one transaction.

Each sync request hands its record to the ingestor and waits until the batch holding it
is committed, so an acknowledged heartbeat is durable, yet under load hundreds of
requests share one transaction instead of paying for one each.

On PostgreSQL several writers take batches from the one queue, so one batch collects
while another commits; a single writer left the server waiting on the database with most
of its CPU idle. SQLite has one writer: it serialises write transactions anyway. Two
batches may then hold the same device, so each batch locks its device rows in key order
and never moves a device's `last_seen_at` backwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signalbeam.domain.model import EventType, Presence
from signalbeam.protocol.device_v1 import Facts, Heartbeat, ReportedState
from signalbeam.server.db.models import Device
from signalbeam.server.repositories.events import EventRepository
from signalbeam.server.repositories.metrics import insert_samples
from signalbeam.server.services.bus import EventBus, EventPayload
from signalbeam.server.services.context import SYSTEM_ACTOR, payload
from signalbeam.server.workers.reboots import record_boots
from signalbeam.server.workers.write_gate import WriteGate

log = logging.getLogger(__name__)
ONLINE_MESSAGE = "device is online"
Observer = Callable[[AsyncSession, list["SyncRecord"]], Awaitable[list[tuple[int, EventPayload]]]]
# Told each committed batch's size and the heartbeat gaps (seconds) it closed (metrics).
BatchMeter = Callable[[int, list[float]], None]
# How long a batch waits for company; small next to a sync's latency target (25 ms at p95).
COLLECT_SECONDS = 0.004


@dataclass
class SyncRecord:
    """What one sync request wants written."""

    device_pk: int
    tenant_id: int
    device_id: str
    seen_at: datetime
    heartbeat: Heartbeat
    reported: ReportedState
    facts: Facts | None = None
    heartbeat_seq: int | None = None  # the sample's outbox seq: stored once, however it comes
    heartbeat_queued: bool = False  # the sample comes through /telemetry: latest metrics only
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def snapshot(heartbeat: Heartbeat) -> dict[str, Any]:
    """The latest-metrics summary kept on the device row for lists and detail pages."""
    data = heartbeat.model_dump(mode="json", exclude_none=True, exclude={"boot_id"})
    if heartbeat.disks:
        data["disk_percent"] = max(disk.percent for disk in heartbeat.disks)
    return data


def sample_row(tenant_id: int, device_pk: int, ts: datetime, beat: Heartbeat) -> dict[str, Any]:
    """One raw metric sample row from a heartbeat."""
    return {
        "tenant_id": tenant_id,
        "device_pk": device_pk,
        "ts": ts,
        "cpu": beat.cpu_percent,
        "memory": beat.memory_percent,
        "disk": max((d.percent for d in beat.disks), default=None),
        "load1": beat.load1,
        "temperature": beat.temperature_celsius,
    }


# Core, not the ORM's bulk update: the ORM inspects every row of every batch to build its
# statements, which the ingest profile showed costing more than SQLite's own work. The SET
# clause comes from the row keys (and `seen_at`, which the guard reads too), hence one
# statement per key set (with and without facts).
# The guard keeps a newer sync's state when a batch holding an older one commits after it.
_UPDATE_DEVICE = (
    update(Device)
    .where(
        Device.id == bindparam("pk"),
        or_(Device.last_seen_at.is_(None), Device.last_seen_at <= bindparam("seen_at")),
    )
    .values(last_seen_at=bindparam("seen_at"))
)


# Only forward: /telemetry may have moved it past this batch's seqs meanwhile.
_MOVE_SAMPLE_MARK = (
    update(Device)
    .where(Device.id == bindparam("pk"), Device.telemetry_sample_seq < bindparam("seq"))
    .values(telemetry_sample_seq=bindparam("seq"))
)


def new_samples(batch: list[SyncRecord], marks: dict[int, int]) -> list[SyncRecord]:
    """The records whose sample is stored now; `marks` moves to the highest seq seen.

    A sample with a seq at or below the device's mark is stored already (its sync was stored
    and the answer lost, and it came again through /telemetry, or the other way round).
    """
    fresh = []
    for record in batch:
        if record.heartbeat_queued:
            continue
        seq = record.heartbeat_seq
        if seq is not None:
            if seq <= marks.get(record.device_pk, 0):
                continue
            marks[record.device_pk] = seq
        fresh.append(record)
    return fresh


def device_row(record: SyncRecord) -> dict[str, Any]:
    """The device-row update for a sync; facts only when the agent sent them."""
    row: dict[str, Any] = {
        "pk": record.device_pk,
        "seen_at": record.seen_at,
        "presence": Presence.ONLINE.value,
        "metrics": snapshot(record.heartbeat),
        "reported_generation": record.reported.generation,
        "reported_state": record.reported.model_dump(mode="json"),
        # Indexed copies for bundle counts and status filters; same batch, no extra query.
        "reported_bundle": record.reported.bundle,
        "reported_version": record.reported.version,
        "reported_status": record.reported.status,
    }
    if record.facts is not None:
        row["facts"] = record.facts.model_dump(mode="json")
    return row


class Ingestor:
    """Collects sync records and commits them in batches, one transaction per batch."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        max_batch: int = 500,
        writers: int = 1,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._max_batch = max_batch
        self.writers = writers
        # None is the stop sign; the bound pushes back on clients when the database lags.
        self._queue: asyncio.Queue[SyncRecord | None] = asyncio.Queue(maxsize=max_batch * 20)
        # Batches write shared; a presence sweep (or a test) holds it exclusive to write alone.
        self.gate = WriteGate()
        self.batches = 0
        self._in_flight = 0
        # Called after every committed batch (the rollout engine wakes on fresh reports).
        self.listeners: list[Callable[[], None]] = []
        # Called inside every batch's transaction with its live records; the events they
        # add are published with the batch's own (metric rules' threshold crossings).
        self.observers: list[Observer] = []
        self.meter: BatchMeter | None = None

    @property
    def pending(self) -> int:
        """How many records are queued or being committed right now."""
        return self._queue.qsize() + self._in_flight

    async def submit(self, record: SyncRecord) -> None:
        """Queue a record and wait until it is committed (raises if the commit failed)."""
        await self._queue.put(record)
        await record.done

    async def run(self) -> None:
        """Commit batches until `stop` is called; then commit what is left and return."""
        await asyncio.gather(*(self._write_batches() for _ in range(self.writers)))

    async def stop(self) -> None:
        """Ask `run` to finish after committing everything already queued."""
        for _ in range(self.writers):
            await self._queue.put(None)

    async def _write_batches(self) -> None:
        """One writer: take a batch, commit it, repeat until it takes a stop sign.

        Each writer takes exactly one stop sign and leaves the others to the other writers.
        """
        while (first := await self._queue.get()) is not None:
            if self._queue.qsize() < self._max_batch:
                # A moment's wait lets the syncs arriving right behind this one share its
                # transaction. Without it, a steady 1,000 syncs/s arrive one at a time and
                # each pays a whole transaction (five round trips to the database thread).
                await asyncio.sleep(COLLECT_SECONDS)
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                if (item := self._queue.get_nowait()) is None:
                    await self._commit(batch)
                    return
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[SyncRecord]) -> None:
        self._in_flight += len(batch)
        try:
            await self.write(batch)
        except Exception as err:
            log.exception("could not store a batch of %d syncs", len(batch))
            for record in batch:
                if not record.done.done():
                    record.done.set_exception(err)
        else:
            for record in batch:
                if not record.done.done():
                    record.done.set_result(None)
        finally:
            self._in_flight -= len(batch)

    async def write(self, batch: list[SyncRecord]) -> None:
        """Store one batch: device rows, metric samples and presence events, one commit."""
        latest = {record.device_pk: record for record in batch}
        async with self.gate.shared(), self._sessions() as session:
            # Row locks in key order: a batch holding the same device waits for this one, then
            # reads the presence it left (so "came online" is recorded once); same order, no
            # deadlock. FOR NO KEY UPDATE, as the UPDATE below would take; SQLite ignores it.
            query = (
                select(Device.id, Device.presence, Device.telemetry_sample_seq, Device.last_seen_at)
                .where(Device.id.in_(latest))
                .order_by(Device.id)
                .with_for_update(key_share=True)
            )
            found = (await session.execute(query)).all()
            previous = {pk: presence for pk, presence, _, _ in found}
            marks = {pk: mark for pk, _, mark, _ in found}
            last_seen = {pk: seen for pk, _, _, seen in found}
            # A device decommissioned after its request was authenticated stays decommissioned.
            live = {pk for pk, presence in previous.items() if presence != Presence.DECOMMISSIONED}
            rows = [device_row(record) for pk, record in latest.items() if pk in live]
            for with_facts in (False, True):
                same_keys = [row for row in rows if ("facts" in row) is with_facts]
                if same_keys:
                    await (await session.connection()).execute(_UPDATE_DEVICE, same_keys)
            stored = [r for r in new_samples(batch, marks) if r.device_pk in live]
            await insert_samples(
                session,
                [sample_row(r.tenant_id, r.device_pk, r.seen_at, r.heartbeat) for r in stored],
            )
            moved = [
                {"pk": pk, "seq": marks[pk]}
                for pk in {r.device_pk for r in stored if r.heartbeat_seq}
            ]
            if moved:
                await (await session.connection()).execute(_MOVE_SAMPLE_MARK, moved)
            # Plain multi-row INSERTs: ORM objects cost one round trip to the database thread
            # each, and under load every round trip waits its turn in a busy event loop (a
            # fleet's first syncs took seconds per batch that way).
            came_online = [
                latest[pk] for pk in live if previous[pk] in (Presence.NEW, Presence.OFFLINE)
            ]
            published = await _record_online(session, came_online)
            published += await record_boots(session, [latest[pk] for pk in live])
            for observe in self.observers:
                published += await observe(session, [latest[pk] for pk in live])
            await session.commit()
        self.batches += 1
        if self.meter is not None:
            self.meter(len(batch), heartbeat_gaps(latest, last_seen))
        for tenant_id, event in published:
            self._bus.publish(tenant_id, event)
        for listener in self.listeners:
            listener()


def heartbeat_gaps(
    latest: dict[int, SyncRecord], last_seen: dict[int, datetime | None]
) -> list[float]:
    """Seconds since each device's previous sync, for the devices that had one."""
    gaps = []
    for pk, seen in last_seen.items():
        if seen is not None and pk in latest:
            gap = (latest[pk].seen_at - seen).total_seconds()
            if gap >= 0:
                gaps.append(gap)
    return gaps


async def _record_online(
    session: AsyncSession, records: list[SyncRecord]
) -> list[tuple[int, EventPayload]]:
    """`device.online` rows for devices that were new or offline; their payloads to publish."""
    by_tenant: dict[int, list[SyncRecord]] = defaultdict(list)
    for record in records:
        by_tenant[record.tenant_id].append(record)
    published: list[tuple[int, EventPayload]] = []
    for tenant_id, tenant_records in by_tenant.items():
        rows = [
            {
                "device_pk": r.device_pk,
                "device_id": r.device_id,
                "type": EventType.DEVICE_ONLINE.value,
                "actor": SYSTEM_ACTOR,
                "message": ONLINE_MESSAGE,
                "data": {},
                "created_at": r.seen_at,
            }
            for r in tenant_records
        ]
        ids = await EventRepository(session, tenant_id).add_many_for_devices(rows)
        published += [
            (
                tenant_id,
                payload(
                    ids[r.device_pk],
                    EventType.DEVICE_ONLINE.value,
                    r.device_id,
                    SYSTEM_ACTOR,
                    ONLINE_MESSAGE,
                    {},
                    r.seen_at,
                ),
            )
            for r in tenant_records
        ]
    return published
