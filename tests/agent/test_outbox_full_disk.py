"""The outbox on a disk that fills up: what the server has is kept (sent again), never spun on."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalbeam.agent.outbox import Outbox
from signalbeam.agent.wire import TelemetryAck
from tests.agent.test_outbox import beat
from tests.components import need


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (needs root), unmounted afterwards."""
    root = tmp_path / "small"
    root.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)]
    done = subprocess.run(mount, capture_output=True, text=True, timeout=30, check=False)
    need(os.geteuid() == 0 and done.returncode == 0, f"cannot mount a tmpfs: {done.stderr}")
    yield root
    subprocess.run(["umount", "-l", str(root)], capture_output=True, timeout=30, check=False)


def fill_up(path: Path) -> None:
    """Zeros into `path` until the file system refuses."""
    try:
        with path.open("wb") as filler:
            while True:
                filler.write(bytes(4096))
                filler.flush()
    except OSError:  # the write, the flush or the close: the disk is full
        return


def test_an_acknowledged_batch_a_full_disk_cannot_delete_stays_and_is_not_counted(
    small_disk: Path,
) -> None:
    outbox = Outbox(small_disk / "outbox.db")
    try:
        for n in range(3):
            assert outbox.add_sample(beat(n))
        batch = outbox.batch(500)
        assert batch is not None
        everything = TelemetryAck(samples_through=10**15, events_through=10**15)
        fill_up(small_disk / "filler")
        # The commit is refused: None (not 3), so the flusher stops instead of resending it
        # in a loop, and the rows stay to go again, stored once by the server.
        assert outbox.acknowledge(batch, everything) is None
        (small_disk / "filler").unlink()
        assert outbox.counts().samples == 3
        assert outbox.acknowledge(batch, everything) == 3
        assert outbox.counts().samples == 0
    finally:
        outbox.close()
