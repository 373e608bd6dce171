"""`signalbeam cp` and `port-forward` as an operator runs them, to a real agent."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from tests.agent.support import Admin, Agents, agent_env, register, wait_until
from tests.cli.runner import Cli, Watcher
from tests.components import free_port
from tests.conftest import LiveServer


@pytest.fixture
def device(fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path) -> Cli:
    """A real agent that allows remote access, online; the CLI logged in as the admin."""
    assert admin.http.put("/api/v1/remote-access", json={"enabled": True}).status_code == 200
    state = tmp_path / "agent"
    done = register(
        state, admin.enrollment_token(), "--server", fast_server.url, "--device-id", "pi-07"
    )
    assert done.returncode == 0, done.stderr
    agents.start(state, agent_env(interval="1s", remote_access="true"))
    wait_until(lambda: admin.device("pi-07").get("presence") == "online", 30, "pi-07 online")
    cli = Cli(tmp_path / "config")
    cli.ok("login", "--server", fast_server.url, "--token", fast_server.admin_token)
    return cli


def test_cp_puts_and_gets_a_file_checked_by_sha256(device: Cli, tmp_path: Path) -> None:
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(300_000))
    remote = tmp_path / "on-device" / "model.bin"
    remote.parent.mkdir()
    out = device.ok("cp", str(local), f"pi-07:{remote}")
    assert out.startswith(f"copied 300000 bytes to pi-07:{remote}")
    assert remote.read_bytes() == local.read_bytes()
    back = tmp_path / "back.bin"
    device.ok("cp", f"pi-07:{remote}", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(local.read_bytes()).digest()
    missing = device.run("cp", "pi-07:/nonexistent/file", str(tmp_path / "x"))
    assert "cannot read /nonexistent/file" in missing.error_line
    assert not (tmp_path / "x").exists()
    assert not list(tmp_path.glob(".*signalbeam-partial"))
    both_local = device.run("cp", str(local), str(back))
    assert "one local path and one DEVICE:/absolute/path" in both_local.error_line


class Kiosk(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"kiosk page {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def kiosk() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), Kiosk)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_port_forward_serves_the_devices_local_web_ui(device: Cli, kiosk: int) -> None:
    local = free_port()
    with Watcher(device.start("port-forward", "pi-07", f"{local}:127.0.0.1:{kiosk}")) as forward:
        assert "forwarding 127.0.0.1:" in forward.out.wait_for("forwarding", 30)
        for page in ("/menu", "/status"):
            answer = httpx.get(f"http://127.0.0.1:{local}{page}", timeout=30)
            assert answer.text == f"kiosk page {page}"
        assert forward.interrupt() == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", local)) != 0  # the listener is gone
