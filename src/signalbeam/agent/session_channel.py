"""One session's WebSocket as the agent's handlers see it: output out, input in, one ending.

The handlers (logs, exec, shell, copy, forward) never touch frames; they send bytes on a
stream, read what the operator sends, and return an exit code or raise `SessionRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from signalbeam.protocol.sessions import (
    MAX_CHUNK_BYTES,
    STDIN,
    FrameError,
    control,
    frame,
    read_control,
    unframe,
)

T = TypeVar("T")


class SessionRefused(Exception):
    """The device will not (or cannot) do what the session asks; `detail` says why and how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Socket(Protocol):
    """The part of a websockets connection a channel uses."""

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...


@dataclass(frozen=True)
class Input:
    """Something the operator sent: stdin bytes, end of stdin, or a terminal resize."""

    kind: str  # "stdin", "eof", "resize"
    data: bytes = b""
    rows: int = 0
    cols: int = 0


class Channel:
    """Output and input of one session, with the time of the last frame either way."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.last_activity = time.monotonic()
        self.bytes_out = 0

    async def send(self, stream: int, data: bytes) -> None:
        """Send bytes on stdout or stderr, split to the protocol's frame size."""
        for start in range(0, len(data), MAX_CHUNK_BYTES):
            await self.socket.send(frame(stream, data[start : start + MAX_CHUNK_BYTES]))
        self.bytes_out += len(data)
        self.last_activity = time.monotonic()

    async def exit(self, code: int, **extra: Any) -> None:
        """The session's last frame: how the command ended."""
        await self.socket.send(control("exit", code=code, **extra))

    async def error(self, detail: str) -> None:
        """The session's last frame: why it could not run or stopped."""
        with contextlib.suppress(Exception):
            await self.socket.send(control("error", detail=detail))

    async def inputs(self) -> AsyncIterator[Input]:
        """What the operator sends, until they close the session."""
        while True:
            try:
                message = await self.socket.recv()
            except Exception:  # closed, by either side: the session is over
                return
            self.last_activity = time.monotonic()
            parsed = _parse(message)
            if parsed is not None:
                yield parsed

    async def until_closed(self) -> None:
        """Return once the operator closed the session (for kinds that read no input)."""
        async for _ in self.inputs():
            pass

    async def unless_closed(self, work: Awaitable[T]) -> T | None:
        """`work`'s result; None (and `work` cancelled) if the operator closes first."""
        running = asyncio.ensure_future(work)
        closed = asyncio.create_task(self.until_closed())
        await asyncio.wait({running, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if running.done():
            return running.result()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return None

    async def idle_for(self, seconds: float) -> None:
        """Return once nothing moved either way for `seconds`."""
        while True:
            quiet = time.monotonic() - self.last_activity
            if quiet >= seconds:
                return
            await asyncio.sleep(seconds - quiet)


def _parse(message: str | bytes) -> Input | None:
    try:
        if isinstance(message, bytes):
            stream, data = unframe(message)
            return Input("stdin", data) if stream == STDIN else None
        body = read_control(message)
    except FrameError:
        return None
    if body["type"] == "eof":
        return Input("eof")
    if body["type"] == "resize":
        return Input("resize", rows=int(body.get("rows", 24)), cols=int(body.get("cols", 80)))
    return None
