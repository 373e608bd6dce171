"""Recordings of terminal sessions: what the operator saw, as an asciinema v2 cast, size-capped.

Only the device's output is kept (what a shell echoes back), never the operator's keystrokes,
so a password typed at a prompt that does not echo is not in the file; SignalBeam's own
secrets (API tokens, enrollment tokens, device credentials) are blanked out of what is.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import time
from pathlib import Path

from signalbeam.domain.errors import NotFound
from signalbeam.server.security import (
    API_TOKEN_PREFIX,
    DEVICE_CREDENTIAL_PREFIX,
    ENROLLMENT_TOKEN_PREFIX,
)

MAX_RECORDING_BYTES = 1024 * 1024
FLUSH_BYTES = 64 * 1024
CAST_TYPE = "application/x-asciicast"
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_PREFIXES = "|".join(
    re.escape(p) for p in (API_TOKEN_PREFIX, DEVICE_CREDENTIAL_PREFIX, ENROLLMENT_TOKEN_PREFIX)
)
SECRET = re.compile(rf"(?:{_PREFIXES})[A-Za-z0-9_-]{{8,}}")
REDACTED = "[redacted]"
TRUNCATED = "\r\n[signalbeam: recording stopped at 1 MiB; the session went on]\r\n"


def recording_path(data_dir: Path, tenant_id: int, session_id: str) -> Path:
    """Where a session's recording lives; the tenant is part of the path."""
    if not SESSION_ID.fullmatch(session_id):
        raise NotFound(f"no recording of session {session_id!r}", field="session_id")
    return data_dir / "recordings" / str(tenant_id) / f"{session_id}.cast"


def redact(text: str) -> str:
    """The text with every SignalBeam secret blanked out."""
    return SECRET.sub(REDACTED, text)


class Recording:
    """Appends a terminal's output to its cast file until the size cap."""

    def __init__(self, path: Path, *, cols: int, rows: int, title: str) -> None:
        self.path = path
        self.started = time.monotonic()
        self.size = 0
        self.truncated = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        header = {"version": 2, "width": cols, "height": rows, "timestamp": int(time.time())}
        self._pending: list[str] = [json.dumps({**header, "title": redact(title)}) + "\n"]
        self._pending_bytes = len(self._pending[0])
        self._writes: asyncio.Task[None] | None = None

    def output(self, data: bytes) -> None:
        """Record bytes the device sent to the operator's terminal."""
        if self.truncated:
            return
        text = redact(self._decoder.decode(data))
        if text:
            self._add(text)

    async def close(self) -> int:
        """Write what is left; the recording's size in bytes."""
        self._flush()
        if self._writes is not None:
            await self._writes
        return self.size

    def _add(self, text: str) -> None:
        line = json.dumps([round(time.monotonic() - self.started, 3), "o", text]) + "\n"
        if self.size + self._pending_bytes + len(line) > MAX_RECORDING_BYTES:
            self.truncated = True
            line = json.dumps([round(time.monotonic() - self.started, 3), "o", TRUNCATED]) + "\n"
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES or self.truncated:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        chunk, self._pending, self._pending_bytes = "".join(self._pending), [], 0
        self.size += len(chunk.encode())
        previous = self._writes
        self._writes = asyncio.create_task(self._write(previous, chunk))

    async def _write(self, previous: asyncio.Task[None] | None, chunk: str) -> None:
        if previous is not None:
            await previous  # appends stay in order
        await asyncio.to_thread(_append, self.path, chunk)


def _append(path: Path, chunk: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(chunk)
