"""Device API v1: the routes agents call, authenticated by a per-device credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from signalbeam.protocol.device_v1 import (
    EnrollRequest,
    EnrollResponse,
    SyncRequest,
    SyncResponse,
    TelemetryAck,
    TelemetryBatch,
    WatchResponse,
)
from signalbeam.server.api.deps import CurrentDevice, RuntimeDep, bearer
from signalbeam.server.api.device.v1.watch_fast_path import DEFAULT_WATCH_SECONDS, MAX_WATCH_SECONDS
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import enrollment, telemetry
from signalbeam.server.services import sync as sync_service

router = APIRouter(prefix="/api/device/v1", tags=["device"])


@router.post("/enroll", response_model=EnrollResponse)
async def enroll(request: EnrollRequest, runtime: RuntimeDep) -> EnrollResponse:
    """Join a tenant with an enrollment token; returns the device credential once."""
    return await enrollment.enroll(runtime, request)


@router.post(
    "/sync",
    response_class=Response,
    responses={200: {"model": SyncResponse, "description": "desired state and hints"}},
)
async def sync(body: SyncRequest, request: Request) -> Response:
    """Heartbeat, facts and reported state in; desired state and hints out.

    In the running server `ControlPlaneApp` hands this path to `SyncFastPath` before
    FastAPI routes it (the hottest route of all, every device every interval). This
    declaration puts it in the OpenAPI document; its body makes the same calls, so it stays
    a working route if the fast path is ever removed.
    """
    runtime: Runtime = request.app.state.runtime
    device = await sync_service.authenticate(runtime, bearer(request, "device credential"))
    answer = await sync_service.sync(runtime, runtime.ingestor, device, body)
    return Response(answer.model_dump_json(), media_type="application/json")


# Without `desired` unless asked for: agents that never ask refuse unknown fields.
@router.get("/watch", response_model=WatchResponse, response_model_exclude_none=True)
async def watch(
    runtime: RuntimeDep,
    device: CurrentDevice,
    generation: Annotated[int, Query(ge=-1, description="the desired generation the agent holds")],
    timeout: Annotated[
        float, Query(ge=0, le=MAX_WATCH_SECONDS, description="seconds to hold the request")
    ] = DEFAULT_WATCH_SECONDS,
    with_desired: Annotated[
        bool, Query(description="include the new desired state in a `changed` answer")
    ] = False,
    with_sessions: Annotated[
        bool, Query(description="answer at once, naming them, when sessions are offered")
    ] = False,
) -> WatchResponse:
    """Long-poll: answers `changed` as soon as the desired generation passes `generation`.

    Served by `WatchFastPath` in the running server, like sync (see `fast_paths`).
    """
    return await sync_service.watch(
        runtime, device, generation, timeout, with_desired=with_desired, with_sessions=with_sessions
    )


@router.post("/telemetry", response_model=TelemetryAck)
async def store_telemetry(
    batch: TelemetryBatch, runtime: RuntimeDep, device: CurrentDevice
) -> TelemetryAck:
    """Samples and agent events queued while offline; each sequence number is stored once."""
    return await telemetry.store(runtime, device, batch)
