"""Real agent processes for tests: register, run, read their status and logs, wait on them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
AGENT = [sys.executable, "-m", "signalbeam.agent"]


def agent_env(**settings: str) -> dict[str, str]:
    """The test's environment without any SIGNALBEAM_AGENT_* leaking in, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALBEAM_AGENT_")}
    env.update({f"SIGNALBEAM_AGENT_{key.upper()}": value for key, value in settings.items()})
    return env


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def register(
    state_dir: Path,
    token: str,
    *args: str,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `signalbeam-agent register` (the token travels in the environment, as advised).

    `launcher` comes before the command, e.g. `ip netns exec NAME` to enroll from a namespace.
    """
    environment = {**(env or agent_env()), "SIGNALBEAM_AGENT_TOKEN": token}
    return subprocess.run(
        [*launcher, *AGENT, "register", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def agent_command(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a short agent command such as `status --json`."""
    return subprocess.run(
        [*AGENT, *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=60,
        check=False,
    )


@dataclass
class AgentProcess:
    """A running `signalbeam-agent run`, logging to a file."""

    state_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, state_dir: Path, env: dict[str, str], *args: str, launcher: Sequence[str] = ()
    ) -> AgentProcess:
        """Start the agent on a registered state dir (behind `launcher`, as `register`)."""
        log_path = state_dir.parent / f"{state_dir.name}-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*launcher, *AGENT, "run", "--state-dir", str(state_dir), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return cls(state_dir, process, log_path)

    def log(self) -> str:
        """Everything the agent logged so far."""
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        """The agent's own status.json (empty before the first write)."""
        try:
            data: dict[str, Any] = json.loads((self.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the agent and wait for it; return its exit status."""
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def wait(self, timeout: float) -> int:
        """Wait for the agent to exit by itself."""
        return self.process.wait(timeout=timeout)


class Admin:
    """The management API as the first admin."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def close(self) -> None:
        """Close the connection."""
        self.http.close()

    def enrollment_token(self, **labels: str) -> str:
        """A new enrollment token's secret."""
        response = self.http.post("/api/v1/enrollment-tokens", json={"labels": labels})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    def device(self, device_id: str) -> dict[str, Any]:
        """One device's detail (empty when it does not exist)."""
        response = self.http.get(f"/api/v1/devices/{device_id}")
        if response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def events(self, device_id: str, type_: str | None = None) -> list[dict[str, Any]]:
        """The device's events (of one type, if given), oldest first."""
        response = self.http.get("/api/v1/events", params={"device": device_id, "limit": 1000})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return [item for item in items[::-1] if type_ is None or item["type"] == type_]

    def agent_events(self, device_id: str) -> list[str]:
        """Types of the agent's own events, oldest first."""
        return [e["type"] for e in self.events(device_id) if e["type"].startswith("agent.")]

    def samples(self, device_id: str) -> int:
        """How many metric samples the server stored for the device."""
        response = self.http.get(f"/api/v1/devices/{device_id}/metrics", params={"step": "1d"})
        assert response.status_code == 200, response.text
        return sum(int(p["samples"]) for p in response.json()["points"])

    def decommission(self, device_id: str) -> None:
        """Revoke the device's credential."""
        response = self.http.delete(f"/api/v1/devices/{device_id}")
        assert response.status_code == 200, response.text


class Agents:
    """Starts agent processes and makes sure none outlives its test."""

    def __init__(self) -> None:
        self.started: list[AgentProcess] = []

    def start(
        self, state_dir: Path, env: dict[str, str], *args: str, launcher: Sequence[str] = ()
    ) -> AgentProcess:
        """Start `signalbeam-agent run` on a state dir."""
        agent = AgentProcess.start(state_dir, env, *args, launcher=launcher)
        self.started.append(agent)
        return agent

    def stop_all(self) -> None:
        """Stop every agent still running (SIGTERM, then SIGKILL)."""
        for agent in self.started:
            try:
                agent.stop(timeout=15)
            except subprocess.TimeoutExpired:
                agent.process.kill()
                agent.process.wait(timeout=10)


async def wait_until_async(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """`wait_until` for tests whose event loop must keep serving while they wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)
