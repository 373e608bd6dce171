"""Device actions on a real agent process: restart an app, restart the agent, reboot, drain.

The reboot runs a script that only notes it ran (the test machine never reboots); the test
then plays the reboot itself: the agent stops, the boot id file changes, the agent starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import (
    ArtifactServer,
    answer,
    assign,
    push,
    relay,
    reported,
    serve_artifacts,
    start_agent,
    wait_reported,
)
from tests.agent.support import Admin, AgentProcess, Agents, agent_env, wait_until
from tests.components import free_port
from tests.conftest import LiveServer

APP = "relay-controller"
BOOT_A = "aaaa1111-5b1e-4f0e-9d7c-000000000001"
BOOT_B = "bbbb2222-5b1e-4f0e-9d7c-000000000002"


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    """Artifacts over real HTTP on loopback."""
    yield from serve_artifacts()


def act(admin: Admin, device_id: str, action: str, **body: Any) -> dict[str, Any]:
    """One device action through the API; that device's result."""
    response = admin.http.post(f"/api/v1/devices/{device_id}:{action}", json=body or None)
    assert response.status_code == 200, response.text
    [result] = response.json()["devices"]
    assert result["device_id"] == device_id
    return {"status": result["status"], "detail": result["detail"]}


def app_pid(agent: AgentProcess) -> int:
    """The pid the agent's record of the app names."""
    record = json.loads((agent.state_dir / "apps" / "units" / APP / "unit.json").read_text())
    pid: int = record["pid"]
    return pid


def agent_starts(admin: Admin, device_id: str) -> int:
    """How many times the server heard the agent start."""
    return admin.agent_events(device_id).count("agent.started")


def running_relay(
    fast_server: LiveServer,
    admin: Admin,
    agents: Agents,
    artifacts: ArtifactServer,
    tmp_path: Path,
    device_id: str,
) -> tuple[AgentProcess, int]:
    """A real agent running the relay app bundle 1.0.0; the app's port."""
    agent = start_agent(fast_server, admin, agents, tmp_path, device_id)
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    push(admin, relay("1.0.0", artifacts, port, flag))
    assign(admin, "relay@1.0.0", devices=[device_id])
    wait_reported(admin, device_id, "running", "1.0.0")
    assert answer(port) == "1.0.0"
    return agent, port


def test_restart_an_app_then_the_agent_with_remote_access_off(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    agent, port = running_relay(fast_server, admin, agents, artifacts, tmp_path, "relay-1")
    before = app_pid(agent)
    assert act(admin, "relay-1", "restart", unit=APP) == {
        "status": "done",
        "detail": f"restarted app {APP}",
    }

    def restarted() -> dict[str, Any] | None:
        [item] = reported(admin, "relay-1")["items"]
        return item if item["restart_count"] == 1 and item["state"] == "running" else None

    wait_until(restarted, 30, "the app to report one restart and run again")
    assert app_pid(agent) != before
    assert answer(port) == "1.0.0"
    assert [
        e["message"] for e in admin.events("relay-1") if e["type"] == "device.unit_restarted"
    ] == [f"{APP} on relay-1 restarted by admin"]

    # The agent starts again in the same process; the app it supervises keeps running.
    app, started = app_pid(agent), agent.status()["started_at"]
    assert agent_starts(admin, "relay-1") == 1
    assert act(admin, "relay-1", "restart-agent") == {
        "status": "done",
        "detail": "restarting the agent",
    }
    wait_until(lambda: agent_starts(admin, "relay-1") == 2, 30, "the agent to start again")
    status = wait_until(
        lambda: (s := agent.status()).get("running") and s["started_at"] != started and s,
        30,
        "status",
    )
    assert agent.alive() and status["pid"] == agent.process.pid, agent.log()
    assert admin.device("relay-1")["presence"] == "online"
    assert app_pid(agent) == app and answer(port) == "1.0.0"
    assert "starting again: " in agent.log()


def test_reboot_is_done_once_the_device_is_back_with_a_new_boot_id(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    boot, marker = tmp_path / "boot_id", tmp_path / "rebooted"
    boot.write_text(BOOT_A + "\n")
    note = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('asked')"
    settings = {"boot_id_file": str(boot), "reboot_command": f'{sys.executable} -c "{note}"'}
    agent = start_agent(fast_server, admin, agents, tmp_path, "pi-boot", **settings)
    wait_until(lambda: admin.device("pi-boot").get("boot_id") == BOOT_A, 30, "the boot id")

    assert act(admin, "pi-boot", "reboot") == {
        "status": "pending",
        "detail": "rebooting; done once it reports a new boot id (now aaaa1111)",
    }
    assert marker.read_text() == "asked"
    assert admin.device("pi-boot")["rebooting_since"] is not None
    assert agent.alive(), "the reboot command ran; the agent itself stays until the reboot"

    # The reboot, played: the agent stops, the kernel's boot id is new, the agent starts.
    agent.stop()
    boot.write_text(BOOT_B + "\n")
    agents.start(agent.state_dir, agent_env(**settings))

    def back() -> dict[str, Any] | None:
        shown = admin.device("pi-boot")
        return shown if shown["boot_id"] == BOOT_B and shown["rebooting_since"] is None else None

    wait_until(back, 30, "the device to be back with its new boot id")
    [event] = [e for e in admin.events("pi-boot") if e["type"] == "device.rebooted"]
    assert event["message"].startswith("pi-boot rebooted (boot id aaaa1111 → bbbb2222), ")
    assert event["message"].endswith(" after user:admin asked")


def test_drain_stops_the_units_for_good_until_uncordon_and_rollback(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    agent, port = running_relay(fast_server, admin, agents, artifacts, tmp_path, "relay-3")
    drained = act(admin, "relay-3", "drain")
    assert drained["status"] == "pending"
    assert drained["detail"].startswith("cordoned; stopping relay@1.0.0's units")
    stopped = wait_until(
        lambda: (now := reported(admin, "relay-3"))["status"] == "idle" and now,
        30,
        "the device to report its units stopped",
    )
    assert stopped["items"] == [] and stopped["bundle"] is None
    assert answer(port) == ""
    assert admin.device("relay-3")["cordoned"] is True

    # It stays stopped: an agent starting afresh converges on "nothing" again.
    agent.stop()
    agents.start(agent.state_dir, agent_env())
    wait_until(lambda: agent_starts(admin, "relay-3") == 2, 30, "the agent to start again")
    synced = admin.device("relay-3")["last_seen_at"]
    wait_until(lambda: admin.device("relay-3")["last_seen_at"] != synced, 30, "a later sync")
    assert reported(admin, "relay-3")["items"] == [] and answer(port) == ""

    assert act(admin, "relay-3", "uncordon")["status"] == "done"
    assert act(admin, "relay-3", "rollback") == {"status": "done", "detail": "back to relay@1.0.0"}
    wait_reported(admin, "relay-3", "running", "1.0.0")
    assert answer(port) == "1.0.0"
