"""A real `signalbeam server --log-format json` whose stderr (the log) is kept apart from
stdout (the start-up banner), so every log line can be read as JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.components import free_port

READY = "Uvicorn running on"


@dataclass
class JsonLogServer:
    """The process, its URL and admin token, and every line it has logged so far."""

    url: str
    admin_token: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    banner: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """Every log line so far, parsed (a line that is not a JSON object fails the test)."""
        parsed = [json.loads(line) for line in list(self.log)]
        assert all(isinstance(record, dict) for record in parsed)
        return parsed


def _drain(pipe: IO[str] | None, into: list[str], ready: threading.Event) -> None:
    # Keep reading so a chatty server never blocks on a full pipe.
    assert pipe is not None
    for line in pipe:
        into.append(line.rstrip("\n"))
        if READY in line:
            ready.set()
    ready.set()


@contextmanager
def json_log_server(
    data_dir: Path, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> Iterator[JsonLogServer]:
    """Start the server with JSON logs on a free port; SIGTERM it (a clean stop) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "signalbeam", "server", "--data-dir", str(data_dir)]
    command += ["--port", str(port), "--no-mdns", "--log-format", "json", *(extra or [])]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: list[str] = []
    banner: list[str] = []
    ready = threading.Event()
    readers = [
        threading.Thread(target=_drain, args=(process.stderr, log, ready), daemon=True),
        threading.Thread(target=_drain, args=(process.stdout, banner, threading.Event())),
    ]
    for reader in readers:
        reader.start()
    try:
        ready.wait(timeout=60)
        if process.poll() is not None or not any(READY in line for line in log):
            raise AssertionError("server did not start:\n" + "\n".join(banner + log))
        token = (data_dir / "admin-token").read_text().strip()
        yield JsonLogServer(f"http://127.0.0.1:{port}", token, process, log, banner)
    finally:
        stop(process)
        for reader in readers:
            reader.join(timeout=10)
        for pipe in (process.stdout, process.stderr):
            assert pipe is not None
            pipe.close()


def stop(process: subprocess.Popen[str]) -> None:
    """A clean stop (SIGTERM), which also sends the last batch of spans."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
