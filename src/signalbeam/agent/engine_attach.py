"""A hijacked engine connection: an exec's terminal as raw bytes both ways on one socket.

The Docker Engine API starts an interactive exec by taking over the HTTP connection: the
client asks `Connection: Upgrade` / `Upgrade: tcp`, the engine answers `101 UPGRADED` (older
Docker answers `200 OK`), and from then on the socket carries keystrokes one way and the
terminal's output the other. httpx cannot hand a connection over, so this module speaks just
enough HTTP/1.1 on an asyncio stream and then gets out of the way.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from signalbeam.agent.engine_api import API_VERSION, CALL_SECONDS, EngineError, error_message
from signalbeam.agent.tls import tls_context

HEAD_LIMIT = 64 * 1024  # bytes of response head before we call the answer broken
ERROR_BODY_LIMIT = 64 * 1024


@dataclass
class Attached:
    """The two ends of a hijacked connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def write(self, data: bytes) -> None:
        """Send bytes to the exec's terminal."""
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        """Drop the connection (the engine keeps the exec running: see session_terminal)."""
        self.writer.close()


def upgrade_request(path: str, body: dict[str, Any], host: str = "engine") -> bytes:
    """The HTTP/1.1 request that asks the engine to hijack the connection for `path`."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /{API_VERSION}{path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + payload


def read_head(head: bytes) -> tuple[int, dict[str, str]]:
    """The status code and (lower-cased) headers of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise EngineError(f"the engine answered with something that is not HTTP: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def attach(address: str, path: str, body: dict[str, Any]) -> Attached:
    """POST `body` to `path` on the engine at `address` and take the connection over."""
    reader, writer = await _connect(address)
    try:
        writer.write(upgrade_request(path, body, urlsplit(address).netloc or "engine"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CALL_SECONDS)
        status, headers = read_head(head)
        if status >= 400:
            raise EngineError(await _error_body(reader, headers), status)
        if status not in (101, 200):
            raise EngineError(f"the engine did not hand the connection over (HTTP {status})")
    except BaseException as err:
        writer.close()
        if isinstance(err, asyncio.IncompleteReadError | asyncio.LimitOverrunError):
            raise EngineError(f"the engine at {address} closed the connection") from err
        if isinstance(err, TimeoutError):
            raise EngineError(f"the container engine at {address} did not answer in time") from err
        raise
    return Attached(reader, writer)


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(address)
    try:
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(parts.path, limit=HEAD_LIMIT)
        if parts.scheme in ("tcp", "http", "https"):
            ssl = tls_context() if parts.scheme == "https" else None
            return await asyncio.open_connection(
                parts.hostname, parts.port, ssl=ssl, limit=HEAD_LIMIT
            )
    except OSError as err:
        raise EngineError(_unreachable(address, err)) from err
    raise EngineError(f"container_socket {address!r} is not unix://PATH, tcp:// or https://")


async def _error_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> str:
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            # The message fits the first chunk; its size line is hex.
            size_line = await asyncio.wait_for(reader.readline(), CALL_SECONDS)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        else:
            size = int(headers.get("content-length") or ERROR_BODY_LIMIT)
        body = await asyncio.wait_for(reader.readexactly(min(size, ERROR_BODY_LIMIT)), CALL_SECONDS)
    except asyncio.IncompleteReadError as err:
        body = err.partial  # an unsized body ends when the engine closes
    except (ValueError, TimeoutError):
        body = b""
    return error_message(body)


def _unreachable(address: str, err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return f"no container engine socket at {address}"
    if isinstance(err, ConnectionRefusedError):
        return f"the container engine at {address} refused the connection"
    if isinstance(err, PermissionError):
        return f"no permission to use the container engine at {address}"
    return f"the container engine at {address} is unreachable ({err})"
