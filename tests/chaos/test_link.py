"""The device's link goes down for a while and comes back: nothing lost, back within an interval."""

from __future__ import annotations

from tests.agent.support import wait_until
from tests.chaos.support import Device, stop_and_count, sync_after, synced


def test_link_down_then_up_loses_nothing_and_the_device_is_back_within_an_interval(
    device: Device,
) -> None:
    agent = device.start()
    synced(agent, 2)

    device.space.link(up=False)
    # Long enough for connections to time out (3 s) and for the agent to call it an outage.
    wait_until(lambda: agent.status().get("samples_queued", 0) >= 6, 30, "six queued samples")
    before = agent.status()
    device.space.link(up=True)
    back = sync_after(agent, before["last_sync_at"], 30)
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    # Counted in samples, one a second: at most three more before the first sync after the cut.
    assert back["samples_taken"] - before["samples_taken"] <= 3, (before, back)
    assert taken["samples_queued"] >= 6
    assert stored == taken["samples_taken"], "every sample stored exactly once"
    assert events == {
        "agent.started": 1,
        "agent.server_unreachable": 1,
        "agent.server_reachable": 1,
        "agent.stopped": 1,
    }, events
    # A sample an interval while offline too, though each sync to the dead link hung for 3 s.
    [back_online] = device.admin.events(device.device_id, "agent.server_reachable")
    offline, queued = back_online["data"]["offline_seconds"], back_online["data"]["queued_samples"]
    assert queued >= 0.7 * offline, f"{queued} samples queued in {offline} s offline"
    assert "Traceback" not in agent.log()
