"""Leases that elect one server process to run a singleton worker (the rollout engine).

A lease row names its holder and an expiry. The holder renews it well before it expires;
any other process may take it once it has expired, which is how a dead holder is replaced.
Every check and change is one conditional UPDATE, atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CursorResult, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.server.db.models import WorkerLease


async def acquire(
    session: AsyncSession, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease until `now + ttl`; False while another holder's is unexpired."""
    statement = (
        update(WorkerLease)
        .where(
            WorkerLease.name == name,
            or_(WorkerLease.holder == holder, WorkerLease.expires_at <= now),
        )
        # The right-hand sides see the old row: `acquired_at` moves only when the holder changes.
        .values(
            holder=holder,
            expires_at=now + ttl,
            acquired_at=case((WorkerLease.holder == holder, WorkerLease.acquired_at), else_=now),
        )
    )
    result = await session.execute(statement)
    assert isinstance(result, CursorResult)
    if result.rowcount == 1:
        await session.commit()
        return True
    await session.rollback()
    return await _create(session, name, holder, now, ttl)


async def _create(
    session: AsyncSession, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    if await session.get(WorkerLease, name) is not None:
        return False
    session.add(WorkerLease(name=name, holder=holder, expires_at=now + ttl, acquired_at=now))
    try:
        await session.commit()
    except IntegrityError:
        # Another process created the row first; it holds the lease.
        await session.rollback()
        return False
    return True


async def release(session: AsyncSession, name: str, holder: str, now: datetime) -> None:
    """Give the lease up at once (clean shutdown), so another process need not wait it out."""
    await session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name, WorkerLease.holder == holder)
        .values(expires_at=now)
    )
    await session.commit()


async def holder_of(session: AsyncSession, name: str, now: datetime) -> str | None:
    """Who holds the lease now, if anyone."""
    lease = await session.scalar(select(WorkerLease).where(WorkerLease.name == name))
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder
