"""A real agent in its own namespace, enrolled with a real server on the veth's host end."""

from __future__ import annotations

import dataclasses
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signalbeam.agent.outbox import read_counts
from tests.agent.conftest import FAST_SYNC
from tests.agent.support import Admin, AgentProcess, Agents, agent_env, register, wait_until
from tests.chaos.netns import Namespace
from tests.conftest import LiveServer, start_server, stop_server

# Short timeouts so a fault shows within a few seconds; the server hints a 1 s interval.
AGENT_SETTINGS = {"interval": "1", "watch_timeout": "2", "request_timeout": "3"}


def start_server_on(space: Namespace, data_dir: Path, database_url: str, port: int) -> LiveServer:
    """A real server syncing every 1 s, listening on the host end of the namespace's veth."""
    extra = ["--database-url", database_url, *FAST_SYNC, "--host", space.host, "--port", str(port)]
    server = start_server(data_dir, extra)
    return dataclasses.replace(server, url=f"http://{space.host}:{port}")


@dataclass
class Device:
    """One device in the namespace: its state dir, its agent, and the server's view of it."""

    space: Namespace
    server: LiveServer
    admin: Admin
    agents: Agents
    state: Path
    device_id: str

    def register(self) -> None:
        """Enroll from inside the namespace, through the veth."""
        token = self.admin.enrollment_token()
        done = register(
            self.state, token, "--server", self.server.url, "--device-id", self.device_id,
            launcher=self.space.launcher,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def start(self, environ: dict[str, str] | None = None, **settings: str) -> AgentProcess:
        """Run the agent inside the namespace, with `environ` added to its environment."""
        env = agent_env(**{**AGENT_SETTINGS, **settings}) | (environ or {})
        return self.agents.start(self.state, env, launcher=self.space.launcher)

    def outbox(self) -> tuple[int, int]:
        """Samples and events waiting in the agent's outbox."""
        counts = read_counts(self.state / "outbox.db")
        return (counts.samples, counts.events) if counts else (0, 0)

    def drained(self, timeout: float = 30) -> None:
        """Wait until the agent delivered everything it queued."""
        wait_until(lambda: self.outbox() == (0, 0), timeout, "the outbox to drain")


def synced(agent: AgentProcess, count: int, timeout: float = 20) -> dict[str, Any]:
    """Wait until the agent has synced `count` samples; its status then."""
    return status_when(
        agent, lambda s: s.get("samples_synced", 0) >= count, timeout, f"{count} synced samples"
    )


def stop_and_count(device: Device, agent: AgentProcess) -> tuple[dict[str, Any], int, Counter[str]]:
    """Stop the agent cleanly; what it took, what the server stored, the agent's events."""
    assert agent.stop() == 0, agent.log()
    taken = agent.status()
    return (
        taken,
        device.admin.samples(device.device_id),
        Counter(device.admin.agent_events(device.device_id)),
    )


def sync_after(agent: AgentProcess, before: str | None, timeout: float) -> dict[str, Any]:
    """Wait for a sync after the one at `before` (status.json's last_sync_at); the status."""
    return status_when(agent, lambda s: s.get("last_sync_at") != before, timeout, "a sync again")


def status_when(
    agent: AgentProcess, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Wait until the agent's status.json passes `check`; that status."""

    def passing() -> dict[str, Any] | None:
        status = agent.status()
        return status if status and check(status) else None

    return wait_until(passing, timeout, what)


@contextmanager
def killed_and_restarted(device: Device, database_url: str) -> Iterator[None]:
    """Kill the server with SIGKILL; start it again at the same address when the block ends."""
    stop_server(device.server, signal.SIGKILL)
    yield
    port = int(device.server.url.rsplit(":", 1)[1])
    server = start_server_on(device.space, device.server.data_dir, database_url, port)
    device.admin.close()
    device.server, device.admin = server, Admin(server.url, server.admin_token)
