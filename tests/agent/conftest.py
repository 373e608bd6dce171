"""Fixtures for agent tests: a control plane that asks for syncs every second, and an admin."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.agent.support import Admin, Agents
from tests.components import free_port
from tests.conftest import LiveServer, start_server, stop_server

FAST_SYNC = ["--sync-interval", "1s", "--no-mdns"]


def start_fast_server(data_dir: Path, database_url: str, port: int) -> LiveServer:
    """A real server on a fixed port (so it can be restarted at the same URL) syncing every 1 s."""
    extra = ["--database-url", database_url, *FAST_SYNC, "--port", str(port)]
    server = start_server(data_dir, extra)
    # start_server picked a port of its own; the later --port wins, so the URL follows it.
    return dataclasses.replace(server, url=f"http://127.0.0.1:{port}")


def stop_or_explain(server: LiveServer, timeout: float = 30) -> str:
    """SIGTERM the server; if it does not stop in time, kill it and fail with its output."""
    if server.process.poll() is not None:
        return "".join(server.output)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
        output = "".join(server.output[-30:])
        raise AssertionError(f"server ignored SIGTERM for {timeout:g} s:\n{output}") from None
    return stop_server(server)


@pytest.fixture
def fast_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A live server whose sync hint is 1 s, on the parametrised database."""
    server = start_fast_server(tmp_path / "server", database_url, free_port())
    yield server
    stop_or_explain(server)


@pytest.fixture
def admin(fast_server: LiveServer) -> Iterator[Admin]:
    """The management API of `fast_server`."""
    client = Admin(fast_server.url, fast_server.admin_token)
    yield client
    client.close()


@pytest.fixture
def agents() -> Iterator[Agents]:
    """Agent processes started by the test; all stopped afterwards."""
    started = Agents()
    yield started
    started.stop_all()


@pytest.fixture(autouse=True)
def no_stray_apps(tmp_path: Path) -> Iterator[None]:
    """Native apps outlive their agent by design; stop the ones this test left running."""
    yield
    root = str(tmp_path)
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid != os.getpid() and process.cwd().startswith(root):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
