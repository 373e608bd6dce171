"""The device's wall clock jumps forward and back: the agent says so, and counts still add up.

The machine's clock is not touched: the agent runs under Debian's libfaketime, whose offset is
read from a file on every call (FAKETIME_NO_CACHE), while the monotonic clocks the agent
schedules by stay real (FAKETIME_DONT_FAKE_MONOTONIC).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.support import wait_until
from tests.chaos.support import Device, stop_and_count, synced
from tests.components import need

# Debian installs it under the architecture's triplet; the MT build is safe with threads.
LIBFAKETIME = next(
    Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"), Path("libfaketimeMT.so.1")
)
JUMP_SECONDS = 7200


@pytest.fixture
def offset_file(tmp_path: Path) -> Iterator[Path]:
    """The file libfaketime reads the agent's clock offset from."""
    need(LIBFAKETIME.exists(), "libfaketime not installed (Debian libfaketime)")
    path = tmp_path / "faketime"
    set_offset(path, 0)
    yield path


def set_offset(path: Path, seconds: int) -> None:
    """Move the agent's wall clock to `seconds` from the real one, in one atomic step."""
    staged = path.with_suffix(".new")
    staged.write_text(f"{seconds:+d}\n")
    staged.replace(path)


def jumps(device: Device) -> list[float]:
    """The clock jumps the server heard of, in seconds, oldest first."""
    return [e["data"]["seconds"] for e in device.admin.events(device.device_id, "agent.clock_jump")]


def test_clock_jumps_forward_and_back_are_reported_and_lose_nothing(
    device: Device, offset_file: Path
) -> None:
    agent = device.start(
        {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    )
    synced(agent, 2)
    set_offset(offset_file, JUMP_SECONDS)
    wait_until(lambda: len(jumps(device)) == 1, 20, "the jump forward reported")
    synced(agent, agent.status()["samples_synced"] + 2)
    set_offset(offset_file, 0)
    wait_until(lambda: len(jumps(device)) == 2, 20, "the jump back reported")
    device.drained()
    taken, stored, events = stop_and_count(device, agent)

    forward, back = jumps(device)
    assert JUMP_SECONDS - 30 < forward < JUMP_SECONDS + 30
    assert -JUMP_SECONDS - 30 < back < -JUMP_SECONDS + 30
    assert stored == taken["samples_taken"], "samples taken around the jumps stored once each"
    assert events["agent.clock_jump"] == 2 and events["agent.started"] == 1, events
    assert "Traceback" not in agent.log()
