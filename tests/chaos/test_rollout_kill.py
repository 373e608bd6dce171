"""The server is killed (-9) while a real agent soaks in a rollout; the rollout still completes."""

from __future__ import annotations

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
    push_ok = device.admin.http.post("/api/v1/bundles", json=beacon("1.0.0"))
    assert push_ok.status_code in (200, 201), push_ok.text
    rollout_id = rollout(device.admin, device.device_id, "1.0.0")
    wait_until(
        lambda: "agent.update_applied" in device.admin.agent_events(device.device_id),
        30,
        "the device to apply the rollout's version",
    )
    # Killed while the device soaks: the rollout engine's state is in the database only.
    with killed_and_restarted(device, chaos_database):
        pass
    done = ended(device.admin, rollout_id, timeout=60)
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    assert done["status"] == "completed", done
    assert [(d["device_id"], d["status"]) for d in done["devices"]] == [
        (device.device_id, "succeeded")
    ]
    assert events["agent.update_applied"] == 1 and events["agent.desired_state_received"] == 1
    assert stored == taken["samples_taken"]
