"""A small async client for the Docker Engine API, as served by Docker and by Podman.

We speak the HTTP API directly with httpx (already the agent's HTTP client) instead of
the `docker` SDK: the SDK is blocking (a thread per call), brings `requests` along, and
costs memory on an agent whose footprint target is tens of megabytes. Only the calls the
container driver needs are here, and every failure becomes an `EngineError` carrying the
engine's own message.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from signalbeam.agent.tls import tls_context

API_VERSION = "v1.41"  # the compat level Podman 4 serves and Docker has served since 20.10
DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
CALL_SECONDS = 30.0
PULL_SECONDS = 900.0  # images on a Pi over a slow uplink


class EngineError(Exception):
    """The engine answered with an error, or could not be reached (`status` is None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def engine_address(configured: str | None) -> str:
    """Where the engine listens: the setting, else DOCKER_HOST, else the usual sockets."""
    address = configured or os.environ.get("DOCKER_HOST")
    if address:
        return address
    for path in DEFAULT_SOCKETS:
        if Path(path).exists():
            return f"unix://{path}"
    return f"unix://{DEFAULT_SOCKETS[0]}"


def _transport(address: str) -> tuple[httpx.AsyncHTTPTransport, str]:
    parts = urlsplit(address)
    if parts.scheme == "unix":
        return httpx.AsyncHTTPTransport(uds=parts.path, verify=False), "http://engine"
    if parts.scheme in ("tcp", "http"):
        return httpx.AsyncHTTPTransport(verify=False), f"http://{parts.netloc}"
    if parts.scheme == "https":
        return httpx.AsyncHTTPTransport(verify=tls_context()), f"https://{parts.netloc}"
    raise EngineError(f"container_socket {address!r} is not unix://PATH, tcp:// or https://")


def demux(data: bytes) -> str:
    """The text of a multiplexed stdout/stderr stream (8-byte frame headers), in order."""
    out = bytearray()
    at = 0
    while at + 8 <= len(data):
        (size,) = struct.unpack(">I", data[at + 4 : at + 8])
        out += data[at + 8 : at + 8 + size]
        at += 8 + size
    if at == 0 and data and data[0] not in (0, 1, 2):
        out = bytearray(data)  # a TTY stream has no frames
    return out.decode("utf-8", "replace")


class EngineClient:
    """One connection pool to the engine; every method raises `EngineError` only."""

    def __init__(self, address: str) -> None:
        self.address = address
        transport, base = _transport(address)
        self.http = httpx.AsyncClient(
            transport=transport, base_url=f"{base}/{API_VERSION}", timeout=CALL_SECONDS
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float = CALL_SECONDS,
        ok_missing: bool = False,
    ) -> Any:
        """One request; the decoded JSON (None for an empty body, or a 404 when allowed)."""
        content = await self.raw(
            method, path, params=params, body=body, timeout=timeout, ok_missing=ok_missing
        )
        if not content:
            return None
        try:
            return json.loads(content)
        except ValueError as err:
            raise EngineError(f"the engine at {self.address} answered {path} with no JSON") from err

    async def raw(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float = CALL_SECONDS,
        ok_missing: bool = False,
    ) -> bytes:
        """One request; the answer's bytes (logs and exec output are byte streams)."""
        try:
            response = await self.http.request(
                method, path, params=params, json=body, timeout=timeout
            )
        except httpx.HTTPError as err:
            raise EngineError(_unreachable(self.address, err)) from err
        if response.status_code == 404 and ok_missing:
            return b""
        if response.status_code >= 400:
            raise EngineError(error_message(response.content), response.status_code)
        return response.content

    async def stream(
        self, method: str, path: str, *, params: dict[str, Any], timeout: float | None
    ) -> AsyncIterator[dict[str, Any]]:
        """A JSON-lines answer (pull progress, events), one object at a time."""
        try:
            async with self.http.stream(
                method, path, params=params, timeout=httpx.Timeout(CALL_SECONDS, read=timeout)
            ) as response:
                if response.status_code >= 400:
                    raise EngineError(error_message(await response.aread()), response.status_code)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(item, dict):
                        yield item
        except httpx.HTTPError as err:
            raise EngineError(_unreachable(self.address, err)) from err

    async def byte_stream(
        self, path: str, *, params: dict[str, Any], method: str = "GET", body: Any = None
    ) -> AsyncIterator[bytes]:
        """An answer that is a byte stream (followed logs, exec output), as it arrives."""
        try:
            async with self.http.stream(
                method,
                path,
                params=params,
                json=body,
                timeout=httpx.Timeout(CALL_SECONDS, read=None),
            ) as response:
                if response.status_code >= 400:
                    raise EngineError(error_message(await response.aread()), response.status_code)
                async for chunk in response.aiter_raw():
                    yield chunk
        except httpx.HTTPError as err:
            raise EngineError(_unreachable(self.address, err)) from err


class Demuxer:
    """Splits the engine's multiplexed stdout/stderr stream into payloads as chunks arrive."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """The payload bytes complete so far (frame headers removed)."""
        return b"".join(data for _, data in self.frames(chunk))

    def frames(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """The frames complete so far: (1 stdout or 2 stderr, payload)."""
        self._buffer += chunk
        out: list[tuple[int, bytes]] = []
        while len(self._buffer) >= 8 and self._buffer[0] in (0, 1, 2):
            (size,) = struct.unpack(">I", self._buffer[4:8])
            if len(self._buffer) < 8 + size:
                break
            out.append((self._buffer[0] or 1, self._buffer[8 : 8 + size]))
            self._buffer = self._buffer[8 + size :]
        return out


def error_message(content: bytes) -> str:
    """The engine's own words from an error answer's body (JSON `message`, else the text)."""
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace").strip()[:300] or "no message"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)[:500]
    return str(body)[:300]


def _unreachable(address: str, err: httpx.HTTPError) -> str:
    if isinstance(err, httpx.TimeoutException):
        return f"the container engine at {address} did not answer in time"
    cause = err.__cause__ or err.__context__
    if isinstance(cause, FileNotFoundError) or "No such file" in str(err):
        return f"no container engine socket at {address}"
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(err).lower():
        return f"the container engine at {address} refused the connection"
    if isinstance(cause, PermissionError) or "Permission denied" in str(err):
        return f"no permission to use the container engine at {address}"
    return f"the container engine at {address} is unreachable ({err})"
