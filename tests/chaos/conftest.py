"""Fixtures for the chaos suite: a namespace per test, a server on its veth, a device in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import agents, no_stray_apps, stop_or_explain
from tests.agent.support import Admin, Agents
from tests.chaos.netns import Namespace, available
from tests.chaos.support import Device, start_server_on
from tests.components import free_port, need
from tests.conftest import LiveServer

__all__ = ["agents", "no_stray_apps"]  # the agent tests' fixtures, used here too


@pytest.fixture
def space() -> Iterator[Namespace]:
    """A fresh network namespace joined to the host by a veth; removed afterwards."""
    reason = available()
    need(reason is None, f"chaos tests: {reason}")
    created = Namespace.create()
    yield created
    created.destroy()


@pytest.fixture
def chaos_database(tmp_path: Path) -> str:
    """The embedded database: most faults here are the network's, not the database's, and the
    suite must stay short. A module whose fault is the server's overrides this with both."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chaos.db'}"


@pytest.fixture
def chaos_server(space: Namespace, tmp_path: Path, chaos_database: str) -> Iterator[LiveServer]:
    """A real server on the veth's host end, syncing every 1 s."""
    server = start_server_on(space, tmp_path / "server", chaos_database, free_port())
    yield server
    stop_or_explain(server)


@pytest.fixture
def device(
    space: Namespace, chaos_server: LiveServer, tmp_path: Path, agents: Agents
) -> Iterator[Device]:
    """A device enrolled from inside the namespace (its agent not started yet)."""
    admin = Admin(chaos_server.url, chaos_server.admin_token)
    enrolled = Device(space, chaos_server, admin, agents, tmp_path / "agent", "chaos-1")
    enrolled.register()
    yield enrolled
    admin.close()


@pytest.fixture
def restarted(device: Device) -> Iterator[Device]:
    """The device, for tests that restart its server; whichever serves it last is stopped."""
    original = device.server
    yield device
    if device.server is not original:
        device.admin.close()
        stop_or_explain(device.server)
