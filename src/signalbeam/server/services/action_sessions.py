"""A device action carried out by the device: the server opens an `action` session and waits.

No operator streams it. The session is offered on the device's watch like any other, the
server itself sends the `open` frame once the agent connects, and the agent's `exit` or
`error` becomes the action's result. Devices are reached a bounded number at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from signalbeam.protocol.sessions import (
    ACTION,
    CLOSE_DONE,
    FrameError,
    open_message,
    read_control,
)
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor
from signalbeam.server.services.session_broker import OfferedSession

# How long the device has to connect once the session is offered (its watch answers < 1 s).
CONNECT_SECONDS = 10.0
# How long one action may take on the device: a unit's clean stop may take 10 s. With the
# connect bound it stays under the CLI's 45 s read timeout, so a quiet stream is not cut.
ANSWER_SECONDS = 30.0
# Devices acted on at once; each holds one WebSocket and a task, nothing more.
PARALLEL = 32
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DeviceRef:
    """The device an action is for, as the session broker needs it."""

    pk: int
    device_id: str


@dataclass(frozen=True)
class Answer:
    """What the device said: `exit` (ok, with its detail) or `error`.

    `lost`: the request went out, then the connection dropped before an answer (what a
    reboot that beats its own reply looks like).
    """

    ok: bool
    detail: str
    lost: bool = False


async def ask(
    runtime: Runtime, actor: Actor, device: DeviceRef, action: str, unit: str | None = None
) -> Answer:
    """Offer the action to the device, send it once the agent connects, read its answer."""
    if runtime.broker.closing:
        return Answer(False, "the control plane is restarting; the action was not sent")
    session = _offered(runtime, actor, device, action, unit)
    runtime.broker.offer(session)
    try:
        socket = await _connected(session)
        if socket is None and runtime.broker.closing:
            return Answer(False, "the control plane is restarting; the action was not sent")
        if socket is None:
            return Answer(
                False,
                f"did not connect for the {action} within {CONNECT_SECONDS:g} s; its agent may "
                "be too old for device actions, or its network is down",
            )
        try:
            await socket.send_text(session.open_frame)
            async with asyncio.timeout(ANSWER_SECONDS):
                return await _answer_unless_ended(session, socket)
        except TimeoutError:
            return Answer(False, f"no answer to the {action} within {ANSWER_SECONDS:g} s")
        except (RuntimeError, OSError, WebSocketDisconnect):
            return Answer(False, "the connection to the device dropped", lost=True)
        finally:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await socket.close(CLOSE_DONE)
    finally:
        runtime.broker.end(session)


async def bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[R]], parallel: int = PARALLEL
) -> AsyncIterator[R]:
    """`work` on every item, `parallel` at a time; each result as soon as it is there."""
    gate = asyncio.Semaphore(parallel)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        for done in asyncio.as_completed(tasks):
            yield await done
    finally:
        # The caller stopped reading (the client went away): stop what has not finished.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _offered(
    runtime: Runtime, actor: Actor, device: DeviceRef, action: str, unit: str | None
) -> OfferedSession:
    session_id = runtime.broker.new_id()
    frame = open_message(session_id, ACTION, actor=str(actor), action=action, unit=unit)
    return OfferedSession(
        id=session_id,
        tenant_id=actor.tenant_id,
        device_pk=device.pk,
        device_id=device.device_id,
        actor=actor,
        kind=ACTION,
        open_frame=frame,
        summary={"action": action, "unit": unit},
        # The server is the only operator: nobody can attach to it.
        operator_attached=True,
    )


async def _connected(session: OfferedSession) -> WebSocket | None:
    await asyncio.wait({session.device}, timeout=CONNECT_SECONDS)
    if not session.device.done() or session.device.cancelled():
        return None
    return session.device.result()


async def _answer_unless_ended(session: OfferedSession, socket: WebSocket) -> Answer:
    """The device's answer, or a failure if the server stops first (it ends every session)."""
    answer = asyncio.ensure_future(_answer(socket, session.summary["action"]))
    ended = asyncio.ensure_future(session.ended.wait())
    try:
        await asyncio.wait({answer, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (answer, ended):
            task.cancel()
    if answer.done() and not answer.cancelled():
        return answer.result()
    return Answer(False, "the control plane is restarting; the action may not have run")


async def _answer(socket: WebSocket, action: str) -> Answer:
    """Read until `exit` or `error`; output frames, if an agent sends any, are ignored."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return Answer(False, f"the device hung up during the {action}", lost=True)
        text = message.get("text")
        if text is None:
            continue
        try:
            control = read_control(text)
        except FrameError as err:
            return Answer(False, f"the device sent a broken frame: {err}")
        if control["type"] == "exit":
            code = control.get("code")
            detail = str(control.get("detail") or f"exit code {code}")
            return Answer(code == 0, detail)
        if control["type"] == "error":
            return Answer(False, str(control.get("detail") or "the device refused"))
