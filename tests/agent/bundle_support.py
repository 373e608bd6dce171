"""Bundles for agent tests: push and assign through the real API, serve real artifacts."""

from __future__ import annotations

import hashlib
import io
import socket
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.agent.support import Admin, AgentProcess, Agents, agent_env, register, wait_until
from tests.conftest import LiveServer


def push(admin: Admin, bundle: dict[str, Any]) -> None:
    """Push a bundle version (JSON) as the admin."""
    response = admin.http.post("/api/v1/bundles", json=bundle)
    assert response.status_code in (200, 201), response.text


def assign(admin: Admin, ref: str, **target: Any) -> dict[str, Any]:
    """Assign `name@version` to devices, a group or a selector."""
    name, version = ref.split("@")
    response = admin.http.post(f"/api/v1/bundles/{name}/versions/{version}/assign", json=target)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reported(admin: Admin, device_id: str) -> dict[str, Any]:
    """What the server last heard the device runs."""
    value: dict[str, Any] = admin.device(device_id).get("reported") or {}
    return value


def wait_reported(
    admin: Admin, device_id: str, status: str, version: str, timeout: float = 90
) -> dict[str, Any]:
    """Wait until the server shows the device at `status` running `version`."""

    def check() -> dict[str, Any] | None:
        now = reported(admin, device_id)
        return now if (now.get("status"), now.get("version")) == (status, version) else None

    try:
        return wait_until(check, timeout, f"{device_id} to report {status} {version}")
    except AssertionError as err:
        raise AssertionError(f"{err}; it reports {reported(admin, device_id)}") from None


@dataclass
class Artifact:
    """An artifact the test serves: its URL and sha256."""

    url: str
    sha256: str


@dataclass
class ArtifactServer:
    """A real HTTP server on loopback serving artifacts from memory."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def add(self, name: str, data: bytes) -> Artifact:
        """Serve `data` at /name."""
        self.files[f"/{name}"] = data
        return Artifact(f"{self.url}/{name}", hashlib.sha256(data).hexdigest())


def serve_artifacts() -> Iterator[ArtifactServer]:
    """Run an `ArtifactServer` until the generator is closed."""
    state = ArtifactServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# A native app: listens on a TCP port while its flag file exists, says which version it is.
APP_SCRIPT = """\
import pathlib, socket, sys, time
port, flag, version = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
print(f"relay {version} listening on {port}", flush=True)
server = socket.create_server(("127.0.0.1", port))
server.settimeout(0.2)
while True:
    if not flag.exists():
        print(f"relay {version}: {flag} is gone, giving up", flush=True)
        sys.exit(3)
    try:
        conn, _ = server.accept()
    except TimeoutError:
        continue
    conn.sendall(version.encode())
    conn.close()
"""


def app_tarball(version: str) -> bytes:
    """A tar.gz holding `relay.py` (the app above) and a VERSION file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("relay.py", APP_SCRIPT), ("VERSION", version)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def app_bundle(
    version: str, artifact: Artifact, port: int, flag: Path, *, health_port: int | None = None
) -> dict[str, Any]:
    """A bundle with one native app, healthy when its TCP port answers."""
    return {
        "name": "relay",
        "version": version,
        "apps": [
            {
                "name": "relay-controller",
                "artifact": {"url": artifact.url, "sha256": artifact.sha256},
                "command": ["python3", "relay.py", str(port), str(flag), version],
                "health": {"tcp": health_port or port, "timeout": "8s", "interval": "200ms"},
            }
        ],
    }


def answer(port: int) -> str:
    """What the relay app on `port` says, or "" when nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(100).decode()
    except OSError:
        return ""


def start_agent(
    server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, device_id: str, **env: str
) -> AgentProcess:
    """Register a real agent as `device_id` with a fresh enrollment token, and run it."""
    state = tmp_path / device_id
    done = register(
        state, admin.enrollment_token(), "--server", server.url, "--device-id", device_id
    )
    assert done.returncode == 0, done.stderr
    return agents.start(state, agent_env(**env))


def relay(version: str, artifacts: ArtifactServer, port: int, flag: Path, **kw: Any) -> Any:
    """The relay app bundle at `version`, its artifact served by `artifacts`."""
    bundle = app_bundle(
        version, artifacts.add(f"relay-{version}.tar.gz", app_tarball(version)), port, flag, **kw
    )
    bundle["apps"][0]["command"][0] = sys.executable
    return bundle
