"""Device authentication and the sync use case."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from signalbeam.domain.errors import Unauthenticated
from signalbeam.protocol.device_v1 import (
    DesiredState,
    ServerHints,
    SyncRequest,
    SyncResponse,
    WatchResponse,
)
from signalbeam.server.db.models import Device
from signalbeam.server.repositories import credentials
from signalbeam.server.runtime import Runtime
from signalbeam.server.workers.ingest import Ingestor, SyncRecord


@dataclass(frozen=True)
class DevicePrincipal:
    """An authenticated device and what sync needs to know about it."""

    pk: int
    tenant_id: int
    device_id: str
    desired_generation: int
    desired_spec: dict[str, object]


async def authenticate(runtime: Runtime, credential: str) -> DevicePrincipal:
    """The device holding this credential, or a 401 telling the agent to re-enroll."""
    async with runtime.sessions() as session:
        device = await credentials.device(session, runtime.hasher.hash(credential))
    if device is None or device.decommissioned_at is not None:
        raise Unauthenticated(
            "device credential not recognised (rotated, or the device was decommissioned); "
            "enroll again with `signalbeam-agent register`"
        )
    return DevicePrincipal(
        pk=device.id,
        tenant_id=device.tenant_id,
        device_id=device.device_id,
        desired_generation=device.desired_generation,
        desired_spec=device.desired_state,
    )


async def sync(
    runtime: Runtime, ingestor: Ingestor, device: DevicePrincipal, request: SyncRequest
) -> SyncResponse:
    """Store the heartbeat and reported state (group-committed), answer with desired state."""
    now = datetime.now(UTC)
    await ingestor.submit(
        SyncRecord(
            device_pk=device.pk,
            tenant_id=device.tenant_id,
            device_id=device.device_id,
            seen_at=now,
            heartbeat=request.heartbeat,
            reported=request.reported,
            facts=request.facts,
        )
    )
    unchanged = request.known_generation == device.desired_generation
    return SyncResponse(
        status="unchanged" if unchanged else "changed",
        generation=device.desired_generation,
        desired=None
        if unchanged
        else DesiredState(generation=device.desired_generation, spec=device.desired_spec),
        hints=ServerHints(sync_interval_seconds=runtime.settings.sync_interval.total_seconds()),
        server_time=now,
    )


async def watch(
    runtime: Runtime, device: DevicePrincipal, generation: int, timeout: float
) -> WatchResponse:
    """Answer as soon as the device's desired generation passes `generation`, or at timeout."""
    wake = runtime.watchers.register(device.pk)
    try:
        # Register before reading, so a change committed in between still wakes us.
        current = await _desired_generation(runtime, device.pk)
        if current <= generation:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            current = await _desired_generation(runtime, device.pk)
    finally:
        runtime.watchers.release(device.pk, wake)
    return WatchResponse(
        status="changed" if current > generation else "unchanged", generation=current
    )


async def _desired_generation(runtime: Runtime, device_pk: int) -> int:
    async with runtime.sessions() as session:
        query = select(Device.desired_generation).where(Device.id == device_pk)
        return int((await session.execute(query)).scalar_one())
