"""Metric retention: roll raw samples up into coarse buckets, then forget the oldest."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from signalbeam.domain.metrics import Aggregate, Bucket, Sample, bucket_start
from signalbeam.server.repositories import metrics as metric_repo
from signalbeam.server.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 10_000


async def enforce(runtime: Runtime, now: datetime | None = None) -> int:
    """Roll up raw samples past the raw window and drop expired rollups; returns rows rolled."""
    settings = runtime.settings
    now = now or datetime.now(UTC)
    raw_cutoff = now - settings.metrics_raw_retention
    rolled = 0
    while True:
        async with runtime.sessions() as session:
            rows = await metric_repo.oldest_raw(session, raw_cutoff, BATCH)
            if not rows:
                break
            buckets: dict[tuple[int, datetime], Bucket] = {}
            for row in rows:
                start = bucket_start(row.ts, settings.metrics_rollup_step)
                bucket = buckets.setdefault((row.device_pk, start), Bucket(start=start))
                bucket.add(
                    Aggregate.of(
                        Sample(row.ts, row.cpu, row.memory, row.disk, row.load1, row.temperature)
                    )
                )
            tenant_of = {row.device_pk: row.tenant_id for row in rows}
            await metric_repo.merge_rollups(session, tenant_of, buckets)
            await metric_repo.delete_raw(session, [row.id for row in rows])
            await session.commit()
            rolled += len(rows)
    async with runtime.sessions() as session:
        await metric_repo.delete_rollups_before(session, now - settings.metrics_rollup_retention)
        await session.commit()
    return rolled


async def run_retention(runtime: Runtime) -> None:
    """Enforce retention forever at the configured period."""
    every = runtime.settings.retention_interval.total_seconds()
    while True:
        try:
            await enforce(runtime)
        except Exception:
            log.exception("metric retention failed; retrying in %ss", every)
        await asyncio.sleep(every)
