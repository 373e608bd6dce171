"""Driving `signalbeam shell` on a pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

from tests.cli.runner import COMMAND, Cli
from tests.server.session_support import BOUND


def drive_shell(cli: Cli) -> tuple[int, str, bool]:
    """Run `signalbeam shell` on a pseudo-terminal: resize it, type, and read the screen."""
    master, slave = pty.openpty()
    _set_size(slave, 30, 100)
    before = termios.tcgetattr(slave)
    process = subprocess.Popen(
        [*COMMAND, "shell", "pi-07"], stdin=slave, stdout=slave, stderr=slave, env=cli.environment()
    )
    try:
        screen = _read_until(master, "ready")
        _set_size(slave, 40, 120)
        process.send_signal(signal.SIGWINCH)
        screen += _read_until(master, "size ")
        os.write(master, b"ls\x03\x04")
        screen += _read_until(master, "keys ")
        code = process.wait(timeout=BOUND)
        restored = termios.tcgetattr(slave) == before
    finally:
        process.kill()
        os.close(master)
        os.close(slave)
    return code, screen, restored


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, text: str) -> str:
    seen = ""
    deadline = time.monotonic() + BOUND
    while text not in seen or not seen.endswith("\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        assert ready, f"no {text!r} on the terminal within {BOUND:g} s; saw {seen!r}"
        seen += os.read(fd, 4096).decode(errors="replace")
    return seen
