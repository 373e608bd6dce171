"""What the operator's side sends into a session: stdin bytes, end of input, terminal sizes."""

from __future__ import annotations

import os
import select
import signal
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from websockets.exceptions import ConnectionClosed

from signalbeam.cli.session_stream import SessionStream
from signalbeam.protocol.sessions import MAX_CHUNK_BYTES

# One byte short of a chunk: the stream byte goes in front.
READ_BYTES = MAX_CHUNK_BYTES - 1
STOP = b"q"
RESIZE = b"r"
Size = Callable[[], tuple[int, int]]


def terminal_size(fd: int) -> tuple[int, int]:
    """The terminal's (rows, cols), or 24x80 when it cannot say."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 24, 80
    return size.lines or 24, size.columns or 80


@contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """The terminal in raw mode for the block (keys go through as bytes), restored after."""
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class InputPump:
    """A thread that sends what `fd` gives as stdin frames, and the size on every resize.

    Reads use os.read on the descriptor, never sys.stdin: a daemon thread blocked inside
    Python's buffered stdin would hold its lock while the interpreter exits.
    """

    def __init__(self, stream: SessionStream, fd: int | None, size: Size | None = None) -> None:
        self.stream = stream
        self.fd = fd
        self.size = size
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="session-input", daemon=True)

    def start(self) -> None:
        """Start sending; with no `fd` the device hears `eof` at once."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sending (the session is over) and release the wake-up pipe."""
        os.write(self._wake_write, STOP)
        self._thread.join(timeout=5)
        os.close(self._wake_read)
        os.close(self._wake_write)

    def wake_for_resize(self) -> None:
        """Ask the thread to send the current terminal size (safe inside a signal handler)."""
        os.write(self._wake_write, RESIZE)

    def _run(self) -> None:
        # A session that ended under us closes the socket; the reader reports how it ended.
        try:
            self._pump()
        except (ConnectionClosed, OSError):
            return

    def _pump(self) -> None:
        if self.fd is None:
            self.stream.send_eof()
        watched = [self._wake_read] if self.fd is None else [self._wake_read, self.fd]
        while watched:
            ready, _, _ = select.select(watched, [], [])
            if self._wake_read in ready and not self._woken():
                return
            if self.fd in ready and not self._forward(self.fd):
                watched.remove(self.fd)

    def _woken(self) -> bool:
        """Handle wake-ups; False when told to stop."""
        reasons = os.read(self._wake_read, 64)
        if STOP in reasons:
            return False
        if self.size is not None:
            self.stream.send_resize(*self.size())
        return True

    def _forward(self, fd: int) -> bool:
        """Send one read's bytes; False (after sending eof) at the end of input."""
        try:
            data = os.read(fd, READ_BYTES)
        except OSError:
            data = b""
        if not data:
            self.stream.send_eof()
            return False
        self.stream.send_stdin(data)
        return True


@contextmanager
def resizes(pump: InputPump) -> Iterator[None]:
    """Send the new size to the device on every SIGWINCH during the block."""

    def on_resize(signum: int, frame: FrameType | None) -> None:
        pump.wake_for_resize()

    previous = signal.signal(signal.SIGWINCH, on_resize)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
