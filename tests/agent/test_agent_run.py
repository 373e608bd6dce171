"""A real agent against a real control plane: register, come online, report, say how it is."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from tests.agent.support import Admin, Agents, agent_command, agent_env, register, wait_until
from tests.conftest import LiveServer


def assert_reports_this_machine(device: dict[str, Any]) -> None:
    assert device["name"] == "Kiosk 1"
    assert device["labels"] == {"site": "lab", "env": "test"}
    assert device["facts"]["agent_version"] == "0.1.0"
    assert device["facts"]["hostname"] and device["facts"]["kernel"]
    assert device["metrics"]["memory_percent"] > 0
    assert any(d["mount"] == "/" for d in device["metrics"]["disks"])


def assert_status_says_running(state: Path, url: str) -> None:
    text = agent_command(state, "status")
    assert text.returncode == 0, text.stderr
    assert f"server:             {url}" in text.stdout
    assert "device id:          pi-1" in text.stdout
    assert "running (pid" in text.stdout and "s ago)" in text.stdout
    assert "current generation: 0 (idle)" in text.stdout
    info = json.loads(agent_command(state, "status", "--json").stdout)
    assert info["running"] and info["device_id"] == "pi-1"
    assert info["desired_generation"] == 0 and info["current_generation"] == 0
    assert info["stop_reason"] is None and info["queued_samples"] == 0


def test_register_run_and_status(live_server: LiveServer, agents: Agents, tmp_path: Path) -> None:
    admin = Admin(live_server.url, live_server.admin_token)
    state = tmp_path / "agent"
    token = admin.enrollment_token(site="lab")
    labels = ("--label", "env=test", "--name", "Kiosk 1", "--device-id", "pi-1")
    done = register(state, token, "--server", live_server.url, *labels)
    assert done.returncode == 0, done.stderr
    assert "Registered device pi-1" in done.stdout and token not in done.stdout + done.stderr
    assert stat.S_IMODE((state / "identity.json").stat().st_mode) == 0o600

    # The live server asks for a sync every 15 s; the device is online at once anyway,
    # because the agent syncs as soon as it starts.
    agent = agents.start(state, agent_env(interval="15"))
    try:
        device = wait_until(
            lambda: (d := admin.device("pi-1")) and d["presence"] == "online" and d, 10, "online"
        )
        assert_reports_this_machine(device)
        wait_until(lambda: "agent.started" in admin.agent_events("pi-1"), 10, "agent.started")
        assert_status_says_running(state, live_server.url)
    finally:
        assert agent.stop() == 0
        admin.close()
    assert "signalbeam-agent stopped" in agent.log()
    after = json.loads(agent_command(state, "status", "--json").stdout)
    assert not after["running"] and after["stopped_at"]
    credential = json.loads((state / "identity.json").read_text())["credential"]
    assert credential not in agent.log(), "the credential never reaches the log"


def test_unregistered_agent_says_what_to_do(agents: Agents, tmp_path: Path) -> None:
    run = agents.start(tmp_path / "empty", agent_env())
    assert run.wait(timeout=30) == 2
    assert "signalbeam-agent register" in run.log()
    status = agent_command(tmp_path / "empty", "status")
    assert status.returncode == 1 and "not registered" in status.stdout


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in ("register", "run", "status", "install-service"):
        shown = agent_command(tmp_path, command, "--help")
        assert shown.returncode == 0, shown.stderr
        assert "Usage: signalbeam-agent" in shown.stdout
