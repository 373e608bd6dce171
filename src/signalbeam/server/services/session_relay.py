"""Relays one session's frames between the operator's WebSocket and the device's.

One frame at a time in each direction: a frame is read only after the previous one was sent,
so a side that stops reading slows the other down instead of filling the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from signalbeam.protocol.sessions import (
    CLOSE_DONE,
    CLOSE_SERVER_RESTARTING,
    STDIN,
    FrameError,
    control,
    read_control,
    unframe,
)

OPERATOR_CONTROLS = ("resize", "eof")
LAST_CONTROLS = ("exit", "error")
RESTARTING = "the control plane is restarting; the session ended"
# What sending on a socket whose peer is gone raises.
GONE = (RuntimeError, OSError, WebSocketDisconnect)


@dataclass
class Outcome:
    """How a session ended, for the activity log and the operator."""

    exit_code: int | None = None
    error: str | None = None
    bytes_to_device: int = 0
    bytes_from_device: int = 0
    restarting: bool = False


async def relay(
    operator: WebSocket,
    device: WebSocket,
    device_id: str,
    ended: asyncio.Event,
    on_output: Callable[[bytes], None] | None = None,
) -> Outcome:
    """Relay until the device says it is done, either side leaves, or the server stops.

    Both sockets stay open (the caller records the outcome, then calls `close_both`), so
    whoever sees the session end finds it in the activity log already.
    """
    outcome = Outcome()
    tasks = {
        asyncio.create_task(_from_device(device, operator, device_id, outcome, ended, on_output)),
        asyncio.create_task(_from_operator(operator, device, outcome)),
        asyncio.create_task(ended.wait()),
    }
    _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if outcome.exit_code is None and outcome.error is None and ended.is_set():
        outcome.error = RESTARTING
        outcome.restarting = True
        await _send_text(operator, control("error", detail=outcome.error))
    return outcome


async def close_both(operator: WebSocket, device: WebSocket, outcome: Outcome) -> None:
    """End both sides; closing the device's socket is what tells its agent to stop the command."""
    code = CLOSE_SERVER_RESTARTING if outcome.restarting else CLOSE_DONE
    await _close(device, code)
    await _close(operator, code)


async def _from_device(
    device: WebSocket,
    operator: WebSocket,
    device_id: str,
    outcome: Outcome,
    ended: asyncio.Event,
    on_output: Callable[[bytes], None] | None,
) -> None:
    while True:
        message = await device.receive()
        if message["type"] == "websocket.disconnect":
            if ended.is_set():
                return  # the server is stopping and closed it; `relay` says so
            outcome.error = f"connection to {device_id} lost"
            await _send_text(operator, control("error", detail=outcome.error))
            return
        data = message.get("bytes")
        if data is not None:
            outcome.bytes_from_device += len(data)
            if on_output is not None and len(data) > 1:
                on_output(data[1:])
            if not await _send_bytes(operator, data):
                return
            continue
        text = message.get("text") or ""
        if not await _send_text(operator, text):
            return
        if _is_last(text, outcome):
            return


def _is_last(text: str, outcome: Outcome) -> bool:
    try:
        message = read_control(text)
    except FrameError as err:
        outcome.error = f"the device sent a broken frame: {err}"
        return True
    if message["type"] == "exit":
        code = message.get("code")
        outcome.exit_code = code if isinstance(code, int) else 255
    elif message["type"] == "error":
        outcome.error = str(message.get("detail", "the device ended the session"))
    return message["type"] in LAST_CONTROLS


async def _from_operator(operator: WebSocket, device: WebSocket, outcome: Outcome) -> None:
    try:
        await _pump_operator(operator, device, outcome)
    except FrameError as err:
        outcome.error = f"the operator sent a broken frame: {err}"
        await _send_text(operator, control("error", detail=outcome.error))


async def _pump_operator(operator: WebSocket, device: WebSocket, outcome: Outcome) -> None:
    while True:
        message = await operator.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            _check_stdin(data)
            outcome.bytes_to_device += len(data) - 1
            if not await _send_bytes(device, data):
                return
            continue
        text = message.get("text") or ""
        if read_control(text)["type"] not in OPERATOR_CONTROLS:
            raise FrameError(f"an operator sends only {', '.join(OPERATOR_CONTROLS)} controls")
        if not await _send_text(device, text):
            return


def _check_stdin(data: bytes) -> None:
    stream, _ = unframe(data)
    if stream != STDIN:
        raise FrameError("an operator sends only stdin (stream 0) frames")


async def _send_bytes(socket: WebSocket, data: bytes) -> bool:
    try:
        await socket.send_bytes(data)
    except GONE:  # the other side is gone; the relay is over
        return False
    return True


async def _send_text(socket: WebSocket, text: str) -> bool:
    try:
        await socket.send_text(text)
    except GONE:
        return False
    return True


async def _close(socket: WebSocket, code: int) -> None:
    with contextlib.suppress(*GONE):
        await socket.close(code)
