"""The agent's state dir fills up: it keeps syncing, says so once, loses nothing it had queued."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.support import wait_until
from tests.chaos.support import Device, stop_and_count, synced
from tests.components import need

FULL = "cannot queue a sample"


@pytest.fixture
def small_disk(device: Device, tmp_path: Path) -> Iterator[Device]:
    """A second device whose state dir is a tmpfs of 8 MB (one device per test would do, but
    the first was enrolled before the mount)."""
    state = tmp_path / "small"
    state.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(state)]
    done = subprocess.run(mount, check=False, capture_output=True, text=True, timeout=30)
    need(done.returncode == 0, f"cannot mount a small tmpfs: {done.stderr.strip()}")
    small = dataclasses.replace(device, state=state, device_id="disk-1")
    small.register()
    yield small
    subprocess.run(["umount", "-l", str(state)], check=False, capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Write zeros to `path` until the file system refuses."""
    try:
        with path.open("wb") as filler:
            while True:
                filler.write(bytes(1 << 16))
                filler.flush()
    except OSError:  # the write, the flush or the close: the disk is full
        return


def test_full_state_dir_keeps_the_agent_syncing_and_loses_nothing_queued(
    small_disk: Device,
) -> None:
    device = small_disk
    agent = device.start()
    synced(agent, 2)
    device.space.link(up=False)
    wait_until(
        lambda: min(device.outbox()) >= 1 and device.outbox()[0] >= 2,
        20,
        "samples and the outage queued before the disk fills",
    )
    queued_before = device.outbox()[0]
    fill(device.state / "filler")
    wait_until(lambda: FULL in agent.log(), 20, "the agent to say its disk is full")
    device.space.link(up=True)
    # Online with a full disk: the samples go straight in the syncs.
    stored = device.admin.samples(device.device_id)
    wait_until(
        lambda: device.admin.samples(device.device_id) >= stored + queued_before + 2,
        30,
        "the queued samples and two more synced while the disk is full",
    )
    (device.state / "filler").unlink()
    wait_until(lambda: "accepts writes again" in agent.log(), 20, "the outbox to work again")
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    assert agent.process.returncode == 0
    # What could not be queued while offline and full is counted and reported, never silent.
    dropped = sum(
        e["data"]["dropped"]
        for e in device.admin.events(device.device_id, "device.samples_dropped")
    )
    assert stored + dropped == taken["samples_taken"], (stored, dropped, taken)
    assert events == {
        "agent.started": 1,
        "agent.server_unreachable": 1,
        "agent.server_reachable": 1,
        "agent.stopped": 1,
    }, events
    log = agent.log()
    assert log.count(FULL) == 1 and log.count("accepts writes again") == 1, log
    assert "Traceback" not in log and "Logging error" not in log
