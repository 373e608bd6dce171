"""Start-first native app updates: a real agent, a real HTTP app, a client counting failures.

The app binds its port with SO_REUSEPORT, so two copies can share it, and its health check
(`test -f ready` in its own directory) is one only the new copy can pass: a port check
could be answered by the old copy. On SIGTERM it stops accepting and answers what already
queued. A client requests throughout an update that succeeds and one whose new copy never
becomes healthy, which leaves the old copy serving. (That copy does answer some requests
while it is tried: sharing a port means the kernel hands it connections once it listens.)
"""

from __future__ import annotations

import http.client
import io
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import (
    ArtifactServer,
    assign,
    push,
    serve_artifacts,
    start_agent,
    wait_reported,
)
from tests.agent.support import Admin, Agents, wait_until
from tests.components import free_port
from tests.conftest import LiveServer

DEVICE = "panel-sf"
SERVER = """\
import os, signal, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, version, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "ready"


class Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close waits for the requests it is answering

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = version.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = Server(("127.0.0.1", port), Handler)
print(f"panel {version} listening on {port}", flush=True)
if ready:
    open("ready", "w").close()
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever(poll_interval=0.05)
# Answer the connections the kernel already queued here before the socket closes.
server.socket.setblocking(False)
while True:
    try:
        conn, address = server.socket.accept()
    except BlockingIOError:
        break
    conn.setblocking(True)
    server.process_request(conn, address)
server.server_close()
"""


def tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = SERVER.encode()
        info = tarfile.TarInfo("panel.py")
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def panel(version: str, artifacts: ArtifactServer, port: int, *, ready: bool = True) -> Any:
    # The version is in the file too, so each version is its own artifact and directory.
    # Zero padding a gzip reader skips, a different length per version: each version has its
    # own sha256 and so its own directory (where only a ready copy writes `ready`).
    padding = b"\0" * (int(version.replace(".", "")) + 1)
    artifact = artifacts.add(f"panel-{version}.tar.gz", tarball() + padding)
    return {
        "name": "panel",
        "version": version,
        "apps": [
            {
                "name": "ui",
                "artifact": {"url": artifact.url, "sha256": artifact.sha256},
                "command": [
                    sys.executable,
                    "panel.py",
                    str(port),
                    version,
                    "ready" if ready else "never-ready",
                ],
                "update_order": "start-first",
                "health": {"exec": ["test", "-f", "ready"], "timeout": "3s", "interval": "100ms"},
            }
        ],
    }


class Client:
    """Requests the app's version in a loop on a thread, a new connection each time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._done.wait(0.01):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                self.answers.append(f"{response.status} {response.read().decode()}")
            except (OSError, http.client.HTTPException) as err:
                self.failures.append(repr(err))
            finally:
                connection.close()

    def saw(self, answer: str, after: int = 0) -> bool:
        return answer in self.answers[after:]


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    yield from serve_artifacts()


def update_order(admin: Admin) -> str | None:
    [item] = admin.device(DEVICE)["reported"]["items"]
    value: str | None = item["update_order"]
    return value


def test_a_start_first_app_update_drops_no_request_and_a_never_healthy_one_leaves_it_serving(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, DEVICE)
    port = free_port()
    push(admin, panel("1.0.0", artifacts, port))
    assign(admin, "panel@1.0.0", devices=[DEVICE])
    wait_reported(admin, DEVICE, "running", "1.0.0")
    assert update_order(admin) is None

    with Client(port) as client:
        wait_until(lambda: client.saw("200 1.0.0"), 10, "the client to reach 1.0.0")
        push(admin, panel("1.1.0", artifacts, port))
        assign(admin, "panel@1.1.0", devices=[DEVICE])
        wait_reported(admin, DEVICE, "running", "1.1.0")
        assert update_order(admin) == "start-first"
        mark = len(client.answers)
        wait_until(lambda: client.saw("200 1.1.0", mark), 10, "only 1.1.0 to answer")
        assert not client.saw("200 1.0.0", mark + 1), "the old copy still answers"

        push(admin, panel("1.2.0", artifacts, port, ready=False))
        assign(admin, "panel@1.2.0", devices=[DEVICE])
        failed = wait_reported(admin, DEVICE, "failed", "1.1.0")
        assert "panel@1.2.0 failed: health check failed: ui" in failed["reason"]
        assert failed["failure_log"] == [f"panel 1.2.0 listening on {port}"]
        mark = len(client.answers)
        wait_until(lambda: client.saw("200 1.1.0", mark), 10, "1.1.0 to go on serving")

    assert client.failures == [], f"{len(client.failures)} of {len(client.answers)} failed"
    assert {"200 1.0.0", "200 1.1.0"} <= set(client.answers)
    assert update_order(admin) == "start-first"
