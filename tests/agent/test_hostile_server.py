"""Garbage, wrong shapes, 500s, huge and slow answers: the agent logs one line each and carries on."""

from __future__ import annotations

from pathlib import Path

from tests.agent.hostile import BAD_SYNC_ANSWERS, hostile_server
from tests.agent.support import Agents, agent_env, register, wait_until


def test_agent_survives_a_hostile_server(agents: Agents, tmp_path: Path) -> None:
    state = tmp_path / "agent"
    with hostile_server() as hostile:
        done = register(state, "any-token", "--server", hostile.url, "--device-id", "brave-1")
        assert done.returncode == 0, done.stderr
        agent = agents.start(state, agent_env(interval="1", request_timeout="1.5"))
        wait_until(lambda: hostile.finished, 90, "every hostile answer to be served")
        # The agent is still alive and syncing after the last bad answer.
        served = len(hostile.served)
        wait_until(lambda: len(hostile.served) > served, 10, "another sync after the abuse")
        assert agent.alive()
        exit_code = agent.stop()
    log = agent.log()
    assert exit_code == 0, log
    for name, _make, fragment in BAD_SYNC_ANSWERS:
        assert fragment in log, f"no clear line for {name!r}:\n{log}"
    assert "could not deliver the outbox yet" in log and "not JSON" in log
    assert "watch failed" in log
    assert "Traceback" not in log
    assert not any(line.startswith("FAKE") for line in log.splitlines()), "no forged log lines"
    telemetry_lines = [line for line in log.splitlines() if "could not deliver the outbox" in line]
    assert len(telemetry_lines) == 1, "the same telemetry failure is logged once, not every sync"
