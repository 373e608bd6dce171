"""Started without a reachable server, the agent runs the desired state it kept on disk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from signalbeam.agent.identity import Identity, save_identity
from signalbeam.agent.outbox import read_counts
from signalbeam.agent.state import StateStore
from signalbeam.agent.wire import DesiredState
from tests.agent.support import Agents, agent_command, agent_env, wait_until
from tests.components import free_port


def test_offline_start_resumes_the_kept_desired_state(agents: Agents, tmp_path: Path) -> None:
    state = tmp_path / "agent"
    nobody = f"http://127.0.0.1:{free_port()}"
    save_identity(
        state,
        Identity(
            server=nobody, device_id="island-1", credential="sbd_x", enrolled_at=datetime.now(UTC)
        ),
    )
    StateStore(state).save_desired(DesiredState(generation=5, spec={"bundle": "demo@1.0.0"}))

    agent = agents.start(state, agent_env(interval="0.3"))
    # The outage is recorded as an event from the second failed sync on; wait for it too.
    status = wait_until(
        lambda: (
            (s := agent.status())
            and s.get("samples_queued", 0) >= 3
            and (queued := read_counts(state / "outbox.db")) is not None
            and queued.events >= 2
            and s
        ),
        30,
        "samples and the outage event queued while the server is unreachable",
    )
    # The kept document went to the bundle reconciler (which refuses it: it is no bundle).
    reported = status["reported"]
    assert (reported["generation"], reported["status"]) == (5, "failed")
    assert "not a bundle document" in reported["reason"]
    assert status["desired_generation"] == 5
    assert agent.stop() == 0
    counts = read_counts(state / "outbox.db")
    assert counts is not None and counts.events >= 3, "started, unreachable, stopped"
    text = agent_command(state, "status").stdout
    assert "desired generation: 5" in text and "current generation: 5 (failed)" in text
    assert "connection refused" in text
    log = agent.log()
    assert "resuming desired state generation 5" in log
    assert log.count("sync failed") == 1, "one line for the outage, not one per retry"
