"""A stand-in for the control plane's device session endpoint, to test the agent's side alone.

A real `websockets` server on loopback plays the relay: it takes the agent's connection, sends
the `open` frame a test writes, forwards what the test sends and records what the agent
answers. The agent's SessionRunner connects to it exactly as it connects to the server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from signalbeam.agent.config import AgentSettings
from signalbeam.agent.session_logs import LogSources
from signalbeam.agent.session_runner import SessionRunner
from signalbeam.protocol.sessions import MAX_FRAME_BYTES, STDERR, STDOUT, open_message, unframe

BOUND = 20.0  # seconds any one step may take before the test fails (never a pause)
CREDENTIAL = "device-credential-for-tests"


@dataclass
class Transcript:
    """What the agent sent after `open`: output per stream, in order, and control messages."""

    controls: list[dict[str, Any]] = field(default_factory=list)
    output: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def stdout(self) -> bytes:
        """Everything on stdout."""
        return b"".join(data for stream, data in self.output if stream == STDOUT)

    @property
    def stderr(self) -> bytes:
        """Everything on stderr."""
        return b"".join(data for stream, data in self.output if stream == STDERR)

    @property
    def last(self) -> dict[str, Any]:
        """The last control message (exit or error)."""
        return self.controls[-1]


@dataclass
class Relay:
    """The loopback server: each agent connection arrives on `arrivals`."""

    url: str
    arrivals: asyncio.Queue[ServerConnection]

    async def device(self, session_id: str) -> ServerConnection:
        """The agent's connection for `session_id`, checked for path and credential."""
        ws = await asyncio.wait_for(self.arrivals.get(), BOUND)
        assert ws.request is not None
        assert ws.request.path == f"/api/device/v1/sessions/{session_id}"
        assert ws.request.headers["Authorization"] == f"Bearer {CREDENTIAL}"
        return ws


@asynccontextmanager
async def relay() -> AsyncIterator[Relay]:
    """A relay stand-in on 127.0.0.1 for the duration of the block."""
    arrivals: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await arrivals.put(ws)
        await ws.wait_closed()  # the test drives the connection; returning would close it

    async with serve(handler, "127.0.0.1", 0, max_size=MAX_FRAME_BYTES) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield Relay(f"http://127.0.0.1:{port}", arrivals)


def log_sources(
    state_dir: Path,
    units: dict[str, str] | None = None,
    host_units: Sequence[str] = (),
    container_logs: Any = None,
) -> Callable[[], LogSources]:
    """What an agent with these bundle units (name -> "app" or "container") can show."""
    return lambda: LogSources(
        units=lambda: dict(units or {}),
        app_home=lambda name: state_dir / "units" / name,
        container_logs=container_logs,
        state_dir=state_dir,
        host_units=list(host_units),
    )


def runner(
    server: Relay,
    state_dir: Path,
    *,
    sources: Callable[[], LogSources] | None = None,
    units: Any = None,
    **settings: Any,
) -> SessionRunner:
    """A SessionRunner as the agent builds it, pointed at the relay stand-in."""
    config = AgentSettings(state_dir=state_dir, **settings)
    return SessionRunner(server.url, CREDENTIAL, config, sources or log_sources(state_dir), units)


async def opened(
    server: Relay, sessions: SessionRunner, kind: str, **fields: Any
) -> ServerConnection:
    """Offer a new session to the runner and send it `open`; the agent's connection."""
    session_id = uuid.uuid4().hex
    sessions.offer(session_id)
    ws = await server.device(session_id)
    await ws.send(open_message(session_id, kind, actor="tester@example.com", **fields))
    return ws


async def read_all(ws: ServerConnection) -> Transcript:
    """Everything the agent sends until it closes the connection."""
    seen = Transcript()
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosed:
            return seen
        if isinstance(message, bytes):
            seen.output.append(unframe(message))
        else:
            seen.controls.append(json.loads(message))


async def read_until(ws: ServerConnection, wanted: bytes) -> bytes:
    """Output until it contains `wanted` (bounded); what came so far."""
    seen = b""
    while wanted not in seen:
        message = await asyncio.wait_for(ws.recv(), BOUND)
        if isinstance(message, bytes):
            seen += unframe(message)[1]
    return seen


async def session(
    server: Relay,
    sessions: SessionRunner,
    kind: str,
    send: Sequence[str | bytes] = (),
    **fields: Any,
) -> Transcript:
    """One whole session: open, send `send`, read until the agent closes."""
    ws = await opened(server, sessions, kind, **fields)
    for message in send:
        await ws.send(message)
    return await asyncio.wait_for(read_all(ws), BOUND)


async def until(check: Callable[[], bool], what: str, seconds: float = BOUND) -> None:
    """Poll `check` until true (bounded), or fail naming `what`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
