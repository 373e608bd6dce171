"""A device whose credential is revoked stops at once, says why, and does not hammer the server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.support import (
    Admin,
    Agents,
    agent_command,
    agent_env,
    register,
    wait_until,
)
from tests.conftest import LiveServer


def test_decommissioned_device_stops_with_the_reason(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    done = register(
        state, admin.enrollment_token(), "--server", fast_server.url, "--device-id", "gone-1"
    )
    assert done.returncode == 0, done.stderr
    agent = agents.start(state, agent_env(interval="0.5", watch_timeout="2"))
    try:
        wait_until(lambda: admin.device("gone-1").get("presence") == "online", 15, "online")
        admin.decommission("gone-1")
        assert agent.wait(timeout=20) == 3
    finally:
        agent.stop()
    log = agent.log()
    refusals = [line for line in log.splitlines() if "refused this device for good" in line]
    assert len(refusals) == 1, log
    assert "decommissioned" in refusals[0]
    assert "Traceback" not in log

    info = json.loads(agent_command(state, "status", "--json").stdout)
    assert not info["running"]
    assert "decommissioned" in info["stop_reason"]
    text = agent_command(state, "status").stdout
    assert "stopped because:" in text and "decommissioned" in text

    # Started again (say by hand), it tries once, stops again with the same reason.
    again = agents.start(state, agent_env(interval="0.5"))
    assert again.wait(timeout=20) == 3
    assert "refused this device for good" in again.log()
