"""Device API v1: the WebSocket an agent opens, outbound, for a session offered on its watch."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from signalbeam.domain.errors import DomainError
from signalbeam.protocol.sessions import CLOSE_NOT_FOUND, CLOSE_REFUSED, control
from signalbeam.server.api.deps import bearer_secret
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import sync as sync_service

router = APIRouter(prefix="/api/device/v1", tags=["device"])


@router.websocket("/sessions/{session_id}")
async def device_session(websocket: WebSocket, session_id: str) -> None:
    """The device's end of a session: held until the relay is over."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    header = websocket.headers.get("authorization", "")
    try:
        device = await sync_service.authenticate(
            runtime, bearer_secret(header, "device credential")
        )
    except DomainError as err:
        await websocket.send_text(control("error", detail=err.detail))
        await websocket.close(CLOSE_REFUSED)
        return
    session = runtime.broker.claim_for_device(session_id, device.pk)
    if session is None:
        detail = "no such session for this device (it ended or was never offered)"
        await websocket.send_text(control("error", detail=detail))
        await websocket.close(CLOSE_NOT_FOUND)
        return
    session.device.set_result(websocket)
    # The operator's handler relays over this socket; it must stay open until that ends.
    await session.finished.wait()
