"""How a virtual device answers a session: its own WebSocket, a canned exec, synthetic logs."""

from __future__ import annotations

import asyncio
import random
import shlex
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from signalbeam.protocol.sessions import (
    ACTION,
    EXEC,
    LOGS,
    MAX_CHUNK_BYTES,
    MAX_FRAME_BYTES,
    REBOOT,
    RESTART,
    RESTART_AGENT,
    STDERR,
    STDOUT,
    FrameError,
    control,
    frame,
    read_control,
)
from signalbeam.sim.stats import FleetStats

SESSION_PATH = "/api/device/v1/sessions/"
CONNECT_SECONDS = 10.0
# The server holds a connected device until the operator attaches, at most its 30 s offer.
OPEN_WAIT_SECONDS = 40.0
DEFAULT_TAIL = 10
LOG_MESSAGES = (
    "request served in 12 ms",
    "sensor read: temperature 21.4 C, humidity 38 %",
    "uploaded 48 samples to the collector",
    "cache hit ratio 0.93 over the last minute",
    "health check passed",
    "rotated /var/log/app/current (2.1 MB)",
)


class SessionFailed(Exception):
    """The session could not be answered; the message is a short kind for the stats."""


def ws_base(http_url: str) -> str:
    """The WebSocket base of a server's HTTP URL (http -> ws, https -> wss)."""
    scheme, _, rest = http_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}"


def fails(device_id: str, command: Sequence[str], rate: float) -> bool:
    """Whether this device's run of this command fails: the same answer on every run."""
    return random.Random(f"{device_id} {shlex.join(command)}").random() < rate


@dataclass
class SyntheticLog:
    """A unit's log as a simulated device shows it: timestamped lines, one every `interval`."""

    device_id: str
    unit: str
    interval: float
    written: int = 0
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = 1000 + zlib.crc32(self.unit.encode()) % 30_000

    def line(self, at: datetime) -> str:
        """The next line, stamped `at` (benchmarks read the stamp to time its delivery)."""
        self.written += 1
        message = LOG_MESSAGES[self.written % len(LOG_MESSAGES)]
        stamp = at.isoformat(timespec="microseconds")
        return f"{stamp} {self.device_id} {self.unit}[{self.pid}]: {message} (#{self.written})\n"

    def tail(self, count: int) -> list[str]:
        """The last `count` lines, the newest stamped now."""
        now = datetime.now(UTC)
        step = timedelta(seconds=self.interval)
        return [self.line(now - step * (count - 1 - n)) for n in range(count)]


@dataclass(frozen=True)
class SessionPeer:
    """What one virtual device needs to answer its sessions."""

    server_url: str
    device_id: str
    headers: dict[str, str]
    log_interval: float = 1.0
    exec_fail_rate: float = 0.0
    # Called once a reboot was answered: the device goes quiet and comes back with a new boot.
    on_reboot: Callable[[], None] | None = None

    async def answer(self, session_id: str, units: Sequence[str], stats: FleetStats) -> None:
        """Connect for one offered session, play it, and count how it went."""
        try:
            await self._connect_and_play(session_id, units)
        except ConnectionClosedOK:
            stats.sessions_answered += 1  # the operator left and the server closed: done
        except (OSError, TimeoutError, WebSocketException, FrameError, SessionFailed) as err:
            stats.session_failed(str(err) if isinstance(err, SessionFailed) else type(err).__name__)
        else:
            stats.sessions_answered += 1

    async def _connect_and_play(self, session_id: str, units: Sequence[str]) -> None:
        url = ws_base(self.server_url) + SESSION_PATH + session_id
        async with connect(
            url,
            additional_headers=self.headers,
            open_timeout=CONNECT_SECONDS,
            max_size=MAX_FRAME_BYTES,
            proxy=None,
        ) as ws:
            opened = await _opened(ws)
            await self._play(opened, ws, units)

    async def _play(
        self, opened: dict[str, Any], ws: ClientConnection, units: Sequence[str]
    ) -> None:
        if opened.get("kind") == EXEC:
            await self._exec(list(opened.get("command") or []), ws)
        elif opened.get("kind") == LOGS:
            await self._logs(opened, ws, units)
        elif opened.get("kind") == ACTION:
            await self._action(opened, ws, units)
        else:
            detail = f"{self.device_id} is a simulated device: it has no terminal to open"
            await ws.send(control("error", detail=detail))

    async def _exec(self, command: list[str], ws: ClientConnection) -> None:
        line = shlex.join(command)
        await ws.send(frame(STDOUT, f"{self.device_id}: {line}\n".encode()))
        failed = fails(self.device_id, command, self.exec_fail_rate)
        if failed:
            await ws.send(frame(STDERR, f"{line}: simulated failure\n".encode()))
        await ws.send(control("exit", code=1 if failed else 0))

    async def _action(
        self, opened: dict[str, Any], ws: ClientConnection, units: Sequence[str]
    ) -> None:
        """Restart a unit it runs, restart its 'agent', or reboot (back after a pause)."""
        action, unit = opened.get("action"), opened.get("unit")
        if action == RESTART and unit not in units[1:]:
            runs = ", ".join(units[1:]) or "none"
            detail = f"no unit {unit!r} on {self.device_id}; units: {runs}"
            await ws.send(control("error", detail=detail))
            return
        done = {RESTART: f"restarted {unit}", RESTART_AGENT: "restarting the agent"}
        await ws.send(control("exit", code=0, detail=done.get(str(action), "rebooting")))
        if action == REBOOT and self.on_reboot is not None:
            self.on_reboot()

    async def _logs(
        self, opened: dict[str, Any], ws: ClientConnection, units: Sequence[str]
    ) -> None:
        unit = opened.get("unit")
        if unit is None:
            await _send_lines(ws, [f"{name}\n" for name in units])
            await ws.send(control("exit", code=0))
            return
        if unit not in units:
            detail = f"{self.device_id} has no unit {unit!r}; it can show {', '.join(units)}"
            await ws.send(control("error", detail=detail))
            return
        log = SyntheticLog(self.device_id, unit, self.log_interval)
        tail = opened.get("tail")
        await _send_lines(ws, log.tail(DEFAULT_TAIL if tail is None else tail))
        if not opened.get("follow"):
            await ws.send(control("exit", code=0))
            return
        await _follow(ws, log)


async def _opened(ws: ClientConnection) -> dict[str, Any]:
    try:
        message = await asyncio.wait_for(ws.recv(), OPEN_WAIT_SECONDS)
    except ConnectionClosed as err:
        # The offer expired before an operator attached: not an answered session.
        raise SessionFailed("closed before open") from err
    if isinstance(message, bytes):
        raise SessionFailed("a binary frame before open")
    opened = read_control(message)
    if opened["type"] == "error":
        raise SessionFailed("refused")  # the session ended or is not this device's
    if opened["type"] != "open":
        raise SessionFailed(f"{opened['type']} before open")
    return opened


async def _send_lines(ws: ClientConnection, lines: list[str]) -> None:
    """The lines in as few frames as the chunk limit allows."""
    chunk = b""
    for line in lines:
        data = line.encode()
        if chunk and len(chunk) + len(data) > MAX_CHUNK_BYTES:
            await ws.send(frame(STDOUT, chunk))
            chunk = b""
        chunk += data[:MAX_CHUNK_BYTES]
    if chunk:
        await ws.send(frame(STDOUT, chunk))


async def _follow(ws: ClientConnection, log: SyntheticLog) -> NoReturn:
    """Write a line every interval until the server closes the socket (ConnectionClosed)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + log.interval
    while True:
        try:
            # Reading keeps the close handshake moving; operator frames (eof, resize) mean
            # nothing to a log. Cancelling recv() loses no message.
            async with asyncio.timeout_at(due):
                await ws.recv()
            continue
        except TimeoutError:
            pass
        await ws.send(frame(STDOUT, log.line(datetime.now(UTC)).encode()))
        due = max(due + log.interval, loop.time())
