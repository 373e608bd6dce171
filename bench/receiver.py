"""A webhook receiver in its own process, stamping each POST as it arrives.

In the bench's own process, its threads would wait for the interpreter lock behind the load
generator or the simulated fleet, and the wait would be counted as delivery latency. It
answers with keep-alive, as a real receiver would, and appends one line per POST to a file:
the arrival time (wall clock) and the body.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from bench.harness import free_port

READY_SECONDS = 30.0


class Listener(ThreadingHTTPServer):
    """A backlog for every connection the server opens at once (the default of 5 drops the rest
    of a burst, and each dropped connection retries a second later)."""

    request_queue_size = 128
    daemon_threads = True


def serve(port: int, path: str, status: int) -> None:
    """Answer `status` to every POST on 127.0.0.1:`port`, logging each to `path` (runs forever);
    status 0: never answer (a dead receiver that still takes connections)."""
    lock = threading.Lock()
    with Path(path).open("ab", buffering=0) as out:
        _serve(port, out, lock, status)


def _serve(port: int, out: BinaryIO, lock: threading.Lock, status: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                out.write(f"{arrived:.6f}\t".encode() + body.replace(b"\n", b" ") + b"\n")
            if not status:
                threading.Event().wait()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    Listener(("127.0.0.1", port), Handler).serve_forever()


@dataclass
class Inbox:
    """The receiver's URL and what it has logged so far."""

    url: str
    path: Path
    _offset: int = 0
    _lines: list[tuple[float, bytes]] = field(default_factory=list)

    def received(self) -> list[tuple[float, bytes]]:
        """Every (arrival time, body) so far, in arrival order."""
        with self.path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            at, _, body = line.partition(b"\t")
            self._lines.append((float(at), body))
        return self._lines


@contextlib.contextmanager
def receiving(workdir: Path, status: int = 200, name: str = "received") -> Iterator[Inbox]:
    """Run a receiver process answering `status` (0: never); its inbox. Stopped afterwards."""
    port, path = free_port(), workdir / f"{name}.log"
    path.touch()
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, str(path), status), daemon=True
    )
    process.start()
    try:
        _wait_listening(port)
        yield Inbox(f"http://127.0.0.1:{port}/hook", path)
    finally:
        process.terminate()
        process.join(5)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the webhook receiver did not listen on port {port}")
