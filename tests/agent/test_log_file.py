"""The agent's log file on a full disk: one line on stderr, not a traceback per record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from signalbeam.agent.log_file import StateDirLog

FULL_DEVICE = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


def test_a_full_disk_is_said_once_and_records_are_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not FULL_DEVICE.exists():
        pytest.skip("/dev/full is missing")
    handler = StateDirLog(FULL_DEVICE)
    record = logging.LogRecord("signalbeam.agent", logging.INFO, __file__, 1, "synced", (), None)
    try:
        for _ in range(5):
            handler.handle(record)
    finally:
        handler.close()
    err = capsys.readouterr().err
    assert err.count("cannot write /dev/full") == 1, err
    assert "No space left on device" in err
    assert "Traceback" not in err and "Logging error" not in err


def test_writes_that_work_again_are_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = StateDirLog(tmp_path / "agent.log")
    record = logging.LogRecord("signalbeam.agent", logging.INFO, __file__, 1, "synced", (), None)
    try:
        handler.failing = True  # as after a failed write
        handler.handle(record)
        handler.handle(record)
    finally:
        handler.close()
    assert capsys.readouterr().err.count("works again") == 1
    assert (tmp_path / "agent.log").read_text().count("synced") == 2
