"""Logs sessions: a bundle unit's output, the agent's own log, or an allowed host unit's journal.

Without a unit the device answers with the units it can show. `grep` keeps matching lines;
`follow` keeps sending new ones until the operator closes the session.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from signalbeam.agent.session_channel import Channel, SessionRefused
from signalbeam.protocol.sessions import AGENT_UNIT, STDOUT

AGENT_LOG = "agent.log"
APP_LOG = Path("logs") / "output.log"
FOLLOW_POLL_SECONDS = 0.2
READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class LogRequest:
    """What the operator asked to see."""

    unit: str | None
    tail: int
    since_seconds: float | None
    grep: str | None
    follow: bool


@dataclass(frozen=True)
class LogSources:
    """Where this device's logs are: bundle units by kind, the agent's file, host units."""

    units: Callable[[], dict[str, str]]  # name -> "container" or "app"
    app_home: Callable[[str], Path]
    container_logs: Callable[[str, LogRequest], AsyncIterator[bytes]] | None
    state_dir: Path
    host_units: list[str]

    def names(self) -> list[str]:
        """Every unit a logs session may name, bundle units first."""
        return [*sorted(self.units()), AGENT_UNIT, *self.host_units]


async def show_logs(channel: Channel, sources: LogSources, request: LogRequest) -> int:
    """Send the logs asked for; the exit code (0) once done, or never while following."""
    if request.unit is None:
        await channel.send(STDOUT, "".join(f"{name}\n" for name in sources.names()).encode())
        return 0
    keep = LineFilter(request.grep)
    async for chunk in _source(sources, request):
        if lines := keep.feed(chunk):
            await channel.send(STDOUT, lines)
    if rest := keep.end():
        await channel.send(STDOUT, rest)
    return 0


class LineFilter:
    """Keeps the lines that match `pattern`; a line split across chunks is judged whole."""

    def __init__(self, pattern: str | None) -> None:
        self.wanted = None if pattern is None else _compile(pattern)
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        """The matching whole lines so far (everything, without a pattern)."""
        if self.wanted is None:
            return chunk
        head, newline, self._partial = (self._partial + chunk).rpartition(b"\n")
        return self._keep(head + newline)

    def end(self) -> bytes:
        """The last line, if it had no newline and matches."""
        rest, self._partial = self._partial, b""
        return self._keep(rest) if self.wanted is not None else b""

    def _keep(self, data: bytes) -> bytes:
        assert self.wanted is not None
        lines = data.splitlines(keepends=True)
        return b"".join(line for line in lines if self.wanted.search(line))


def _compile(pattern: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode())
    except re.error as err:
        raise SessionRefused(
            f"the filter {pattern!r} is not a valid regular expression: {err}"
        ) from err


def _source(sources: LogSources, request: LogRequest) -> AsyncIterator[bytes]:
    unit = request.unit or ""
    kind = sources.units().get(unit)
    if kind == "container" and sources.container_logs is not None:
        return sources.container_logs(unit, request)
    if kind == "app":
        return follow_file(sources.app_home(unit) / APP_LOG, request)
    if unit == AGENT_UNIT:
        return follow_file(sources.state_dir / AGENT_LOG, request)
    if unit in sources.host_units:
        return journal(unit, request)
    raise SessionRefused(f"no unit {unit!r} on this device; units: {', '.join(sources.names())}")


async def follow_file(path: Path, request: LogRequest) -> AsyncIterator[bytes]:
    """The last `tail` lines of a (rotated) log file, then what is appended, if following."""
    data, offset = await asyncio.to_thread(_tail, path, request.tail)
    yield data
    if not request.follow:
        return
    while True:
        data, offset = await asyncio.to_thread(_read_from, path, offset)
        if data:
            yield data
        else:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _tail(path: Path, lines: int) -> tuple[bytes, int]:
    """The last `lines` lines (reaching into the rotated `.1`), and where the file ends now."""
    chunks = [p.read_bytes() for p in (path.with_name(path.name + ".1"), path) if p.exists()]
    every = b"".join(chunks).splitlines(keepends=True)
    size = len(chunks[-1]) if path.exists() and chunks else 0
    return (b"".join(every[-lines:]) if lines else b""), size


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return b"", 0
    if size < offset:
        offset = 0  # rotated: the file started again
    with path.open("rb") as file:
        file.seek(offset)
        data = file.read(READ_BYTES)
    return data, offset + len(data)


async def journal(unit: str, request: LogRequest) -> AsyncIterator[bytes]:
    """A host unit's journal through `journalctl` (which the device owner allowed)."""
    if shutil.which("journalctl") is None:
        raise SessionRefused("journalctl is not installed on this device")
    argv = ["journalctl", "-u", unit, "-n", str(request.tail), "--no-pager", "-o", "short-iso"]
    if request.since_seconds is not None:
        argv += ["--since", f"-{int(request.since_seconds)}s"]
    if request.follow:
        argv.append("-f")
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    try:
        while data := await process.stdout.read(READ_BYTES):
            yield data
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
