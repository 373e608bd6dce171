"""Reboots seen in syncs: a device whose agent reports a new boot id came back from one.

The ingestor calls this inside each batch's transaction, so the `device.rebooted` row and
the new boot id commit together; a reboot action waiting on the device is done then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.domain.durations import coarse_duration
from signalbeam.domain.model import EventType
from signalbeam.protocol.device_v1 import Heartbeat
from signalbeam.server.db.models import Device
from signalbeam.server.repositories.events import EventRepository
from signalbeam.server.services.bus import EventPayload
from signalbeam.server.services.context import SYSTEM_ACTOR, payload


@dataclass(frozen=True)
class Known:
    """What the device row says: its newest sync, boot id and open reboot request."""

    seen_at: datetime | None
    boot_id: str | None
    requested_at: datetime | None
    requested_by: str | None


@dataclass(frozen=True)
class Reboot:
    """One device that reported a new boot id."""

    tenant_id: int
    device_pk: int
    device_id: str
    seen_at: datetime
    before: Known
    boot_id: str

    @property
    def message(self) -> str:
        """The activity line: which boots, and how long after who asked."""
        ids = f"boot id {short(self.before.boot_id)} → {short(self.boot_id)}"
        asked = self.before.requested_at
        if asked is None:
            return f"{self.device_id} rebooted ({ids}); nobody asked for it here"
        took = coarse_duration(max(0.0, (self.seen_at - asked).total_seconds()))
        return f"{self.device_id} rebooted ({ids}), {took} after {self.before.requested_by} asked"

    @property
    def data(self) -> dict[str, object]:
        """The event's data: both boot ids, and the request it completes, if any."""
        asked = self.before.requested_at
        return {
            "previous_boot_id": self.before.boot_id,
            "boot_id": self.boot_id,
            "requested_by": self.before.requested_by,
            "seconds": round((self.seen_at - asked).total_seconds(), 1) if asked else None,
        }


# Read under the batch's row locks, after its update: what a new boot id is judged against.
KNOWN = (
    Device.last_seen_at,
    Device.boot_id,
    Device.reboot_requested_at,
    Device.reboot_requested_by,
)


def short(boot_id: str | None) -> str:
    """The first eight characters, as people compare boot ids."""
    return (boot_id or "?")[:8]


def new_boot(before: Known, reported: str | None, seen_at: datetime) -> bool:
    """Whether a sync at `seen_at` reporting `reported` brings a boot id to store.

    A sync older than the newest stored is not (a batch that commits after a newer one must
    not bring the old boot back). The first boot id a device reports is stored, but is no
    reboot (`before.boot_id` is None then).
    """
    if reported is None or reported == before.boot_id:
        return False
    return before.seen_at is None or seen_at >= before.seen_at


class Synced(Protocol):
    """The part of an ingest record this module reads."""

    device_pk: int
    tenant_id: int
    device_id: str
    seen_at: datetime
    heartbeat: Heartbeat


# Rare: a device's first boot id, or a new one after a reboot. Steady syncs write nothing here.
_SET_BOOT = update(Device).where(Device.id == bindparam("pk")).values(boot_id=bindparam("boot"))
_DONE = update(Device).values(reboot_requested_at=None, reboot_requested_by=None)


async def record_boots(
    session: AsyncSession, records: Sequence[Synced]
) -> list[tuple[int, EventPayload]]:
    """Store new boot ids; `device.rebooted` for each device that changed; payloads to publish.

    Runs after the batch's device update, under its row locks, so `last_seen_at` already
    says whether a record is the newest this device has had.
    """
    reporting = {r.device_pk: r for r in records if r.heartbeat.boot_id is not None}
    if not reporting:
        return []
    query = select(Device.id, *KNOWN).where(Device.id.in_(reporting))
    known = {row[0]: Known(*row[1:]) for row in await session.execute(query)}
    changed = [
        (record, known[pk])
        for pk, record in reporting.items()
        if pk in known and new_boot(known[pk], record.heartbeat.boot_id, record.seen_at)
    ]
    if not changed:
        return []
    connection = await session.connection()
    rows = [{"pk": r.device_pk, "boot": r.heartbeat.boot_id} for r, _ in changed]
    await connection.execute(_SET_BOOT, rows)
    reboots = [
        Reboot(r.tenant_id, r.device_pk, r.device_id, r.seen_at, before, r.heartbeat.boot_id or "")
        for r, before in changed
        if before.boot_id is not None
    ]
    done = [r.device_pk for r in reboots if r.before.requested_at is not None]
    if done:
        await session.execute(_DONE.where(Device.id.in_(done)))
    return await _record(session, reboots)


async def _record(
    session: AsyncSession, reboots: Sequence[Reboot]
) -> list[tuple[int, EventPayload]]:
    by_tenant: dict[int, list[Reboot]] = defaultdict(list)
    for reboot in reboots:
        by_tenant[reboot.tenant_id].append(reboot)
    published: list[tuple[int, EventPayload]] = []
    kind = EventType.DEVICE_REBOOTED.value
    for tenant_id, items in by_tenant.items():
        rows = [
            {
                "device_pk": r.device_pk,
                "device_id": r.device_id,
                "type": kind,
                "actor": SYSTEM_ACTOR,
                "message": r.message,
                "data": r.data,
                "created_at": r.seen_at,
            }
            for r in items
        ]
        ids = await EventRepository(session, tenant_id).add_many_for_devices(rows)
        published += [
            (
                tenant_id,
                payload(
                    ids[r.device_pk], kind, r.device_id, SYSTEM_ACTOR, r.message, r.data, r.seen_at
                ),
            )
            for r in items
        ]
    return published
