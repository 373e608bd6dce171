"""A download cut mid-way by the network resumes where it stopped, verifies, and the rollout ends."""

from __future__ import annotations

from pathlib import Path

from tests.agent.bundle_support import push, wait_reported
from tests.agent.support import wait_until
from tests.chaos.bundles import RATE, beacon, ended, rollout, tarball, upload
from tests.chaos.relay import relay
from tests.chaos.support import Device, synced


def partial_size(state: Path) -> int:
    """Bytes of the download in progress under the agent's state dir."""
    return sum(path.stat().st_size for path in state.rglob("*.partial"))


def test_a_download_cut_mid_way_resumes_and_the_rollout_completes(device: Device) -> None:
    content = tarball()
    port = int(device.server.url.rsplit(":", 1)[1])
    with relay(device.space.host, port, 0.0, rate=RATE) as held:
        device.space.through_relay(port, held.port)
        agent = device.start()
        synced(agent, 1)
        digest = upload(device.admin, content)
        push(device.admin, beacon("1.0.0"))
        rollout_id = rollout(device.admin, device.device_id, "1.0.0")

        kept = wait_until(
            lambda: (n := partial_size(device.state)) > len(content) * 0.6 and n,
            30,
            "more than half of the artifact on the device",
        )
        device.space.reset(held.port)
        wait_until(lambda: "interrupted after" in agent.log(), 15, "the agent to see the cut")
        device.space.heal()
        done = ended(device.admin, rollout_id)
        sent = held.answered

    assert done["status"] == "completed", done
    running = wait_reported(device.admin, device.device_id, "running", "1.0.0")
    assert [item["artifact_sha256"] for item in running["items"]] == [digest]
    # Started over, the server would have sent more than 1.6 x the blob; resumed, the rest only.
    assert len(content) < sent < len(content) + (len(content) - kept) + 200_000, (kept, sent)
    assert "starting over" not in agent.log() and "Traceback" not in agent.log()
