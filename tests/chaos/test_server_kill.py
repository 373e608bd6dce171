"""The server is killed (-9) while the agent queues: every sample it took is stored once."""

from __future__ import annotations

import pytest

from tests.agent.support import wait_until
from tests.chaos.support import Device, killed_and_restarted, stop_and_count, synced


@pytest.fixture
def chaos_database(database_url: str) -> str:
    """Both databases: what a killed server had accepted must be in either."""
    return database_url


def test_server_killed_while_the_agent_queues_loses_no_sample(
    restarted: Device, chaos_database: str
) -> None:
    device = restarted
    agent = device.start()
    synced(agent, 3)
    with killed_and_restarted(device, chaos_database):
        wait_until(lambda: agent.status().get("samples_queued", 0) >= 3, 20, "queued samples")
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    # Samples the killed server had answered were stored before the answer, not buffered.
    assert stored == taken["samples_taken"], "every sample taken is stored exactly once"
    assert events == {
        "agent.started": 1,
        "agent.server_unreachable": 1,
        "agent.server_reachable": 1,
        "agent.stopped": 1,
    }, events
