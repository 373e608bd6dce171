"""Device authentication and the sync use case."""

from __future__ import annotations

import asyncio
import contextlib
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
from signalbeam.server.observability.request_context import serving_device
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.device_cache import DevicePrincipal
from signalbeam.server.workers.ingest import Ingestor, SyncRecord


async def authenticate(runtime: Runtime, credential: str) -> DevicePrincipal:
    """The device holding this credential, or a 401 telling the agent to re-enroll."""
    credential_hash = runtime.hasher.hash(credential)
    cached = runtime.devices.get(credential_hash)
    if cached is not None:
        serving_device(cached.device_id)
        return cached
    version = runtime.devices.version
    principal = await runtime.credential_lookups.principal(credential_hash)
    if principal is None:
        raise Unauthenticated(
            "device credential not recognised (rotated, or the device was decommissioned); "
            "enroll again with `signalbeam-agent register`"
        )
    runtime.devices.put(credential_hash, principal, version)
    serving_device(principal.device_id)
    return principal


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
            heartbeat_seq=request.heartbeat_seq,
            heartbeat_queued=request.heartbeat_queued,
        )
    )
    unchanged = request.known_generation == device.desired_generation
    return SyncResponse(
        status="unchanged" if unchanged else "changed",
        generation=device.desired_generation,
        desired=None
        if unchanged
        else DesiredState(generation=device.desired_generation, spec=device.desired_spec),
        hints=ServerHints(
            sync_interval_seconds=runtime.settings.sync_interval.total_seconds(),
            heartbeat_seq=True,
        ),
        server_time=now,
    )


async def watch(
    runtime: Runtime,
    device: DevicePrincipal,
    generation: int,
    timeout: float,
    *,
    with_desired: bool = False,
    with_sessions: bool = False,
) -> WatchResponse:
    """Answer as soon as the device's desired generation passes `generation`, or at timeout.

    With `with_desired`, a wake-up that carried the new desired state hands it over at once,
    so the device needs no second request to learn what to run. With `with_sessions`, a
    session offered to the device answers at once too, naming it.
    """
    wake = runtime.watchers.register(device.pk)
    spec = None
    offered: list[str] = []
    try:
        # Register before reading, so a change committed in between still wakes us.
        current = _cached_generation(runtime, device.pk)
        if current is None:
            current = await _desired_generation(runtime, device.pk)
        if with_sessions:
            offered = runtime.broker.hand_out(device.pk)
        if current <= generation and not offered:
            # asyncio.timeout, not wait_for: no extra task per held watch, and on Python 3.11
            # wait_for can swallow a cancellation that races the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
            # The notifier says which generation woke us; no need to ask the database again.
            announced = runtime.watchers.generation(device.pk)
            if announced >= current:
                current, spec = announced, runtime.watchers.spec(device.pk)
            if with_sessions:
                offered = runtime.broker.hand_out(device.pk)
    finally:
        runtime.watchers.release(device.pk, wake)
    changed = current > generation
    desired = (
        DesiredState(generation=current, spec=spec)
        if with_desired and changed and spec is not None
        else None
    )
    return WatchResponse(
        status="changed" if changed else "unchanged",
        generation=current,
        desired=desired,
        sessions=offered or None,
    )


def _cached_generation(runtime: Runtime, device_pk: int) -> int | None:
    """The desired generation from the device cache, where the cache is known to be current.

    On SQLite this process makes every change, and each one evicts the device from the cache
    before it wakes the device's watchers: a cached copy read after registering is either
    current or already superseded by a wake-up on its way. Reading it here spares the
    database a query per watch (10,000 watching devices re-arm about 170 watches a second,
    each a session and a round trip to the database thread). Other replicas change a
    PostgreSQL database without evicting here, so there the database is asked.
    """
    if not runtime.settings.on_sqlite:
        return None
    cached = runtime.devices.current(device_pk)
    return None if cached is None else cached.desired_generation


async def _desired_generation(runtime: Runtime, device_pk: int) -> int:
    async with runtime.sessions() as session:
        query = select(Device.desired_generation).where(Device.id == device_pk)
        return int((await session.execute(query)).scalar_one())
