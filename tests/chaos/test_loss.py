"""20 % packet loss and 300 ms each way on the device's link: every sample arrives exactly once."""

from __future__ import annotations

from tests.chaos.relay import relay
from tests.chaos.support import Device, status_when, stop_and_count, synced

LOSS_PERCENT = 20
DELAY_SECONDS = 0.3


def test_lossy_slow_link_delivers_every_sample_exactly_once(device: Device) -> None:
    port = int(device.server.url.rsplit(":", 1)[1])
    with relay(device.space.host, port, DELAY_SECONDS) as held:
        device.space.through_relay(port, held.port)
        agent = device.start()
        synced(agent, 1)
        device.space.loss(LOSS_PERCENT)
        lossy = status_when(
            agent, lambda s: s["samples_taken"] >= 6, 40, "six samples over the lossy link"
        )
        device.space.heal()
        device.drained()
        taken, stored, events = stop_and_count(device, agent)
        assert held.connections > 0, "the agent's connections went through the delaying relay"

    assert lossy["samples_synced"] > 1, "samples still went through the lossy link"
    assert stored == taken["samples_taken"], "every sample stored exactly once"
    # However many syncs and batches were retried, each event is stored once.
    assert events["agent.started"] == events["agent.stopped"] == 1, events
    assert events["agent.server_unreachable"] == events["agent.server_reachable"], events
    assert "Traceback" not in agent.log()
