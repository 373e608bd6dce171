"""Test clients for sessions: an operator and a scripted device speaking protocol/sessions.py.

The scripted device is the device API's client in server-side tests (the real agent's side is
tested in tests/agent); it holds the real watch and opens the real device WebSocket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from signalbeam.protocol.sessions import STDERR, STDOUT, frame, unframe
from tests.helpers import enroll, enrollment_token, sync

BOUND = 20.0  # seconds any one step may take before the test fails (never a pause)
Answer = Callable[[dict[str, Any], ClientConnection], Awaitable[None]]


def ws_url(base: str, path: str) -> str:
    """The WebSocket URL of `path` on the server at `base`."""
    return base.replace("http://", "ws://", 1) + path


@dataclass
class Transcript:
    """What an operator saw: control messages and the bytes of each stream."""

    controls: list[dict[str, Any]] = field(default_factory=list)
    stdout: bytes = b""
    stderr: bytes = b""
    close_code: int | None = None

    @property
    def last(self) -> dict[str, Any]:
        """The last control message (exit or error)."""
        return self.controls[-1]


async def read_all(ws: ClientConnection) -> Transcript:
    """Everything the server sends until it closes the socket."""
    seen = Transcript()
    # Iterating by hand: `async for` raises on the application's own close codes (4xxx).
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosed:
            seen.close_code = ws.close_code
            return seen
        if isinstance(message, bytes):
            stream, data = unframe(message)
            if stream == STDOUT:
                seen.stdout += data
            elif stream == STDERR:
                seen.stderr += data
        else:
            seen.controls.append(json.loads(message))


async def echo_command(opened: dict[str, Any], ws: ClientConnection) -> None:
    """A device that 'runs' the command: prints it on stdout, a note on stderr, exits 0."""
    await ws.send(frame(STDOUT, " ".join(opened["command"]).encode()))
    await ws.send(frame(STDERR, b"done\n"))
    await ws.send(json.dumps({"type": "exit", "code": 0}))


@dataclass
class ScriptedDevice:
    """A device that watches for sessions and answers each with `answer`."""

    base: str
    credential: str
    answer: Answer = echo_command
    opened: list[dict[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def headers(self) -> dict[str, str]:
        """The device credential header."""
        return {"Authorization": f"Bearer {self.credential}"}

    async def serve(self) -> None:
        """Hold the watch; connect and answer every session it names (until cancelled)."""
        seen: set[str] = set()
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers) as http:
            while True:
                # A generation past any real one: the watch is held until a session comes.
                params = {"generation": "1000000", "timeout": "30", "with_sessions": "true"}
                body = (await http.get("/api/device/v1/watch", params=params, timeout=60)).json()
                for session_id in body.get("sessions") or []:
                    if session_id not in seen:
                        seen.add(session_id)
                        await self.run_session(session_id)

    async def run_session(self, session_id: str) -> None:
        """Connect for one session and answer it."""
        path = f"/api/device/v1/sessions/{session_id}"
        async with connect(ws_url(self.base, path), additional_headers=self.headers) as ws:
            self.connected.set()
            opened = json.loads(await ws.recv())
            self.opened.append(opened)
            await self.answer(opened, ws)


@asynccontextmanager
async def running(device: ScriptedDevice) -> AsyncIterator[ScriptedDevice]:
    """The device serving sessions in the background for the block."""
    task = asyncio.create_task(device.serve())
    try:
        yield device
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def online_device(http: httpx.AsyncClient, device_id: str) -> str:
    """Enroll a device and sync it once so it is online; its credential."""
    token = await enrollment_token(http)
    credential = await enroll(http, token, device_id)
    assert (await sync(http, credential)).status_code == 200
    return credential


@contextmanager
def stalled_operator(base: str, token: str, path: str) -> Iterator[socket.socket]:
    """An operator that completes the WebSocket handshake and then never reads again.

    Written on a bare socket on purpose: every WebSocket library keeps reading in the
    background, and this client must let the kernel's buffers fill up.
    """
    host, port = base.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=BOUND) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(request.encode())
        assert sock.recv(12) == b"HTTP/1.1 101", "the server refused the WebSocket"
        yield sock


async def attach(base: str, token: str, created: dict[str, Any]) -> Transcript:
    """Open the operator's stream of a created session and read it to the end."""
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(ws_url(base, created["stream"]), additional_headers=headers) as ws:
        return await asyncio.wait_for(read_all(ws), BOUND)
