"""Device API v1: the routes agents call, authenticated by a per-device credential."""

from __future__ import annotations

from fastapi import APIRouter

from signalbeam.protocol.device_v1 import EnrollRequest, EnrollResponse, SyncRequest, SyncResponse
from signalbeam.server.api.deps import CurrentDevice, RuntimeDep
from signalbeam.server.services import enrollment
from signalbeam.server.services import sync as sync_service

router = APIRouter(prefix="/api/device/v1", tags=["device"])


@router.post("/enroll", response_model=EnrollResponse)
async def enroll(request: EnrollRequest, runtime: RuntimeDep) -> EnrollResponse:
    """Join a tenant with an enrollment token; returns the device credential once."""
    return await enrollment.enroll(runtime, request)


@router.post("/sync", response_model=SyncResponse)
async def sync(request: SyncRequest, runtime: RuntimeDep, device: CurrentDevice) -> SyncResponse:
    """Heartbeat, facts and reported state in; desired state and hints out."""
    return await sync_service.sync(runtime, runtime.ingestor, device, request)
