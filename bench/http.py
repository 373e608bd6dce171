"""A lean HTTP/1.1 keep-alive client for load generation.

httpx costs far more CPU per request than the server spends answering a sync, so a
benchmark built on it measures the client. This client writes pre-built request bytes
and parses just the status line, Content-Length (or chunked framing) and the body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

NO_BODY_STATUSES = (204, 304)


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


@dataclass(frozen=True)
class Target:
    """Where requests go: host and port, plus the Host header value."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        """`host:port` for the Host header."""
        return f"{self.host}:{self.port}"


def build_request(
    target: Target,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The complete bytes of one request (the body appended)."""
    return request_head(target, method, path, len(body), headers) + body


def request_head(
    target: Target,
    method: str,
    path: str,
    length: int,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """Request line and headers; the body (of `length` bytes) follows."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {target.authority}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Status, Content-Length, chunked?, keep-alive? from a response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HttpError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
    return status, length, chunked, keep_alive


def _chunked_end(buffer: bytearray, start: int) -> tuple[int, bytes] | None:
    """Where a complete chunked body ends and its content; None until it is all here."""
    position, content = start, bytearray()
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        chunk_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            return (trailer_end + 4, bytes(content)) if trailer_end >= 0 else None
        if len(buffer) < chunk_start + size + 2:
            return None
        content += buffer[chunk_start : chunk_start + size]
        position = chunk_start + size + 2


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self.keep_alive = True
        self.last_used = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection lost: {exc or 'closed by server'}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            try:
                self._complete()
            except (HttpError, ValueError) as err:
                self._waiter.set_exception(HttpError(str(err)))
                self.close()

    def _complete(self) -> None:
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        status, length, chunked, keep_alive = _parse_head(bytes(self._buffer[:head_end]))
        start = head_end + 4
        if chunked:
            found = _chunked_end(self._buffer, start)
            if found is None:
                return
            end, body = found
        else:
            size = 0 if status in NO_BODY_STATUSES else (length or 0)
            end = start + size
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self.keep_alive = keep_alive
        assert self._waiter is not None
        self._waiter.set_result((status, body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send one request and wait for its whole response: (status, body)."""
        if self.closed or self._transport is None:
            raise HttpError("connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            self.last_used = time.monotonic()

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()


async def connect(target: Target) -> Connection:
    """A new connection to `target`."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(Connection, target.host, target.port)
    return protocol


class Pool:
    """Keep-alive connections shared by many callers; most recently used first.

    Connections idle longer than `idle_seconds` are dropped before reuse, so the pool never
    races the server closing them (uvicorn closes idle keep-alive connections after 5 s).
    """

    def __init__(self, target: Target, idle_seconds: float = 4.0) -> None:
        self.target = target
        self._idle: list[Connection] = []
        self._idle_seconds = idle_seconds
        self.opened = 0

    async def _acquire(self) -> Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.last_used < self._idle_seconds:
                return connection
            connection.close()
        self.opened += 1
        return await connect(self.target)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send `data` on a free connection; (status, body)."""
        connection = await self._acquire()
        try:
            result = await connection.request(data)
        except BaseException:
            connection.close()
            raise
        if connection.keep_alive and not connection.closed:
            self._idle.append(connection)
        else:
            connection.close()
        return result

    def close(self) -> None:
        """Close every idle connection."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
