"""Offline operation: the server goes away, the agent keeps sampling, and nothing is lost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from signalbeam.agent.outbox import read_counts
from tests.agent.conftest import start_fast_server
from tests.agent.support import (
    Admin,
    AgentProcess,
    Agents,
    agent_command,
    agent_env,
    register,
    wait_until,
)
from tests.conftest import LiveServer, stop_server

AGENT_SETTINGS = {"interval": "0.5", "watch_timeout": "2", "request_timeout": "5"}


def outbox(state: Path) -> tuple[int, int]:
    """Samples and events waiting in the agent's outbox right now."""
    counts = read_counts(state / "outbox.db")
    return (counts.samples, counts.events) if counts else (0, 0)


def queued_at_least(state: Path, samples: int, events: int) -> bool:
    now = outbox(state)
    return now[0] >= samples and now[1] >= events


def ride_out_the_outage(agents: Agents, agent: AgentProcess, state: Path) -> AgentProcess:
    """With the server down: queue, restart the agent, queue more; return the new agent."""
    wait_until(lambda: queued_at_least(state, 3, 1), 20, "samples and agent.server_unreachable")
    assert agent.stop() == 0
    samples, events = outbox(state)
    assert events == 2, "agent.server_unreachable and agent.stopped"
    agent = agents.start(state, agent_env(**AGENT_SETTINGS))
    wait_until(
        lambda: queued_at_least(state, samples + 3, events + 2),
        20,
        "more samples, agent.started and agent.server_unreachable after the restart",
    )
    assert agent.alive()
    info = json.loads(agent_command(state, "status", "--json").stdout)
    assert info["queued_samples"] >= 6 and info["queued_events"] >= 4
    assert "connection refused" in info["last_error"]
    return agent


def test_outbox_survives_server_and_agent_restarts(
    fast_server: LiveServer, admin: Admin, agents: Agents, database_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    done = register(
        state, admin.enrollment_token(), "--server", fast_server.url, "--device-id", "ship-1"
    )
    assert done.returncode == 0, done.stderr
    agent = agents.start(state, agent_env(**AGENT_SETTINGS))
    wait_until(lambda: agent.status().get("samples_synced", 0) >= 2, 15, "two synced samples")

    stop_server(fast_server)
    agent = ride_out_the_outage(agents, agent, state)

    # The server comes back at the same URL, on the same data dir and database.
    port = int(fast_server.url.rsplit(":", 1)[1])
    server = start_fast_server(fast_server.data_dir, database_url, port)
    revisit = Admin(server.url, server.admin_token)
    try:
        wait_until(lambda: outbox(state) == (0, 0), 30, "the outbox to drain")
        assert agent.stop() == 0, "its final agent.stopped event is delivered on the way out"
        taken = agent.status()
        stored = revisit.samples("ship-1")
        delivered = revisit.agent_events("ship-1")
    finally:
        revisit.close()
        stop_server(server)

    assert taken["samples_queued"] >= 6
    assert taken["samples_synced"] + taken["samples_queued"] == taken["samples_taken"]
    assert stored == taken["samples_taken"], "every sample stored exactly once"
    assert Counter(delivered) == {
        "agent.started": 2,
        "agent.stopped": 2,
        "agent.server_unreachable": 2,
        "agent.server_reachable": 1,
    }, delivered
    assert delivered[0] == "agent.started" and delivered[-1] == "agent.stopped"
    assert "server reachable again" in agent.log() and "Traceback" not in agent.log()
