"""The server is killed (-9) while a real agent soaks in a rollout; the rollout still completes.

The server stays down longer than the offline threshold (3 missed syncs): the device could
not sync meanwhile, and must not be failed for the server's own outage.
"""

from __future__ import annotations

from tests.agent.bundle_support import push
from tests.agent.support import wait_until
from tests.chaos.bundles import beacon, ended, rollout, tarball, upload
from tests.chaos.support import Device, killed_and_restarted, stop_and_count, synced


def test_server_killed_during_a_rollout_which_then_completes(
    restarted: Device, chaos_database: str
) -> None:
    device = restarted
    agent = device.start()
    synced(agent, 1)
    upload(device.admin, tarball())
    push(device.admin, beacon("1.0.0"))
    rollout_id = rollout(device.admin, device.device_id, "1.0.0", soak="4s")
    wait_until(
        lambda: "agent.update_applied" in device.admin.agent_events(device.device_id),
        30,
        "the device to apply the rollout's version",
    )
    # Killed while the device soaks: the rollout engine's state is in the database only.
    with killed_and_restarted(device, chaos_database):
        # Down for longer than the 3 missed intervals that make a device offline.
        wait_until(lambda: agent.status().get("samples_queued", 0) >= 5, 30, "queued samples")
    done = ended(device.admin, rollout_id, timeout=60)
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    assert done["status"] == "completed", (done["devices"], done.get("failures"))
    assert [(d["device_id"], d["status"]) for d in done["devices"]] == [
        (device.device_id, "succeeded")
    ]
    assert events["agent.update_applied"] == 1 and events["agent.desired_state_received"] == 1
    assert stored == taken["samples_taken"]
