"""Coming back: a device is online again within about one sync interval of the server returning.

Backoff is for a server that answers with errors. While nothing answers at all, the agent keeps
probing at its sync interval, so however long the outage, it does not sleep through the return.
"""

from __future__ import annotations

from pathlib import Path

from tests.agent.conftest import start_fast_server
from tests.agent.support import Admin, Agents, agent_env, register, wait_until
from tests.conftest import LiveServer, stop_server

# The server hints a 1 s interval (FAST_SYNC); the agent's own backoff starts at 1 s and
# doubles, so eight failed syncs would have it sleeping for up to a minute.
AGENT_SETTINGS = {"interval": "1", "watch_timeout": "2", "request_timeout": "5"}


def test_the_device_is_back_within_an_interval_after_a_long_outage(
    fast_server: LiveServer, admin: Admin, agents: Agents, database_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "agent"
    done = register(
        state, admin.enrollment_token(), "--server", fast_server.url, "--device-id", "back-1"
    )
    assert done.returncode == 0, done.stderr
    agent = agents.start(state, agent_env(**AGENT_SETTINGS))
    wait_until(lambda: agent.status().get("samples_synced", 0) >= 1, 15, "a synced sample")

    stop_server(fast_server)
    # Eight failed syncs in a row: an error backoff would be at a ceiling of 2**8 s by now.
    wait_until(lambda: agent.status().get("samples_queued", 0) >= 8, 30, "eight queued samples")
    port = int(fast_server.url.rsplit(":", 1)[1])
    server = start_fast_server(fast_server.data_dir, database_url, port)
    before = agent.status()
    up_at, synced_at = before["samples_taken"], before["last_sync_at"]
    try:
        wait_until(lambda: agent.status()["last_sync_at"] != synced_at, 30, "a sync again")
        back_at = agent.status()["samples_taken"]
    finally:
        stop_server(server)
    # Counted in samples, one per interval: the agent took at most three more before it synced
    # again (the probe's jitter is under one interval; the rest is scheduling slack).
    assert back_at - up_at <= 3, f"{back_at - up_at} intervals to come back"
    assert "Traceback" not in agent.log()
