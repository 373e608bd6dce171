"""Raw metric samples and their long-lived rollups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.domain.metrics import SERIES, Aggregate, Bucket
from signalbeam.server.db.models import MetricRollup, MetricSample
from signalbeam.server.repositories.base import TenantRepository


def _means(row: MetricSample | MetricRollup) -> dict[str, float | None]:
    return {name: getattr(row, name) for name in SERIES}


def _rollup_aggregate(row: MetricRollup) -> Aggregate:
    maxima = {"cpu": row.cpu_max, "memory": row.memory_max, "disk": row.disk_max}
    return Aggregate(ts=row.bucket, means=_means(row), weight=row.samples, maxima=maxima)


class MetricRepository(TenantRepository):
    """Metric history of one tenant's devices."""

    async def history(self, device_pk: int, start: datetime, end: datetime) -> list[Aggregate]:
        """Rollups and raw samples of one device in [start, end), as aggregates, oldest first."""
        rollups = select(MetricRollup).where(
            MetricRollup.tenant_id == self.tenant_id,
            MetricRollup.device_pk == device_pk,
            MetricRollup.bucket >= start,
            MetricRollup.bucket < end,
        )
        raw = select(MetricSample).where(
            MetricSample.tenant_id == self.tenant_id,
            MetricSample.device_pk == device_pk,
            MetricSample.ts >= start,
            MetricSample.ts < end,
        )
        parts = [_rollup_aggregate(r) for r in await self.session.scalars(rollups)]
        parts += [
            Aggregate(ts=s.ts, means=_means(s))
            for s in await self.session.scalars(raw.order_by(MetricSample.ts))
        ]
        return sorted(parts, key=lambda part: part.ts)


async def insert_samples(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert raw samples (one executemany for a whole ingest batch).

    Executed on the connection, as plain Core: the ORM's bulk insert inspects every row,
    which costs more than the insert itself at ingest rates.
    """
    if rows:
        await (await session.connection()).execute(insert(MetricSample), list(rows))


async def oldest_raw(session: AsyncSession, cutoff: datetime, limit: int) -> list[MetricSample]:
    """Raw samples older than the cutoff, oldest first, at most `limit`."""
    query = select(MetricSample).where(MetricSample.ts < cutoff).order_by(MetricSample.id)
    return list(await session.scalars(query.limit(limit)))


async def merge_rollups(
    session: AsyncSession, tenant_of: dict[int, int], buckets: dict[tuple[int, datetime], Bucket]
) -> None:
    """Add buckets into stored rollups, combining with any rollup already in that slot."""
    for (device_pk, start), bucket in buckets.items():
        existing = await session.get(MetricRollup, (device_pk, start))
        if existing is not None:
            bucket.add(_rollup_aggregate(existing))
        else:
            existing = MetricRollup(
                device_pk=device_pk, bucket=start, tenant_id=tenant_of[device_pk]
            )
            session.add(existing)
        existing.samples = bucket.samples
        for name in SERIES:
            setattr(existing, name, bucket.mean(name))
        existing.cpu_max = bucket.maximum("cpu")
        existing.memory_max = bucket.maximum("memory")
        existing.disk_max = bucket.maximum("disk")


async def delete_raw(session: AsyncSession, ids: Sequence[int]) -> None:
    """Drop raw samples that have been rolled up."""
    await session.execute(delete(MetricSample).where(MetricSample.id.in_(ids)))


async def delete_rollups_before(session: AsyncSession, cutoff: datetime) -> None:
    """Forget rollups older than the rollup retention."""
    await session.execute(delete(MetricRollup).where(MetricRollup.bucket < cutoff))
