"""A native app's output: the FIFO it writes to, copied into a rotating log file."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
LOG_FILE = "output.log"
CHUNK_BYTES = 1 << 16
TAIL_BYTES = 4096


class RotatingLog:
    """Appends to `path`, renaming it to `.1` (and `.1` to `.2`...) when it would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: io.FileIO | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append `data`; output that cannot be written (a full disk) is dropped, not fatal."""
        try:
            if self._file is not None and self._size + len(data) > self.max_bytes:
                self._rotate()
            file = self._file or self._open()
            file.write(data)
            self._size += len(data)
        except OSError as err:
            log.warning("cannot write %s: %s; output dropped", self.path, err)

    def close(self) -> None:
        """Close the current file; the next write opens it again."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> io.FileIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = file = self.path.open("ab", buffering=0)
        self._size = file.tell()
        return file

    def _rotate(self) -> None:
        self.close()
        for index in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else self.path
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index}"))


class Tail:
    """The last few KiB a process wrote, for `exited with code 3: <last line>`."""

    def __init__(self) -> None:
        self.data = b""

    def add(self, chunk: bytes) -> None:
        """Remember `chunk`, forgetting all but the last `TAIL_BYTES`."""
        self.data = (self.data + chunk)[-TAIL_BYTES:]

    def text(self) -> str:
        """What was kept, decoded."""
        return self.data.decode(errors="replace")

    def last_line(self) -> str:
        """The last non-blank line, trimmed to 200 characters."""
        lines = [line.strip() for line in self.text().splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""


def read_log_tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a rotated log, reaching into `.1` when the current is short."""
    found: list[str] = []
    for candidate in (path, path.with_name(f"{path.name}.1")):
        with contextlib.suppress(FileNotFoundError), candidate.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - max(CHUNK_BYTES, lines * 512)))
            found = file.read().decode(errors="replace").splitlines()[-lines:] + found
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])


def open_fifo(path: Path) -> int:
    """Our read end of the unit's FIFO (created when missing), non-blocking."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISFIFO(path.lstat().st_mode):
            path.unlink()
    with contextlib.suppress(FileExistsError):
        os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


async def pump(read_fd: int, output: RotatingLog, tail: Tail) -> None:
    """Copy the FIFO into the rotating log until every writer has closed it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK_BYTES)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        # Each chunk is at most 64 KiB, so the append is brief enough to do inline.
        while chunk := await reader.read(CHUNK_BYTES):
            output.write(chunk)
            tail.add(chunk)
    finally:
        transport.close()
