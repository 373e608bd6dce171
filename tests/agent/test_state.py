"""The agent's own files: a disk that refuses writes costs a log line, never the agent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from signalbeam.agent.client import one_line, problem_detail
from signalbeam.agent.state import StateStore, load_desired, load_status
from signalbeam.agent.wire import DesiredState


def test_status_and_desired_state_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.status.samples_taken = 7
    assert store.save_status()
    assert store.save_desired(DesiredState(generation=3, spec={"bundle": "demo@1.0.0"}))
    assert load_status(tmp_path).samples_taken == 7
    assert load_desired(tmp_path) == DesiredState(generation=3, spec={"bundle": "demo@1.0.0"})


def test_refused_writes_log_once_and_recover(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = StateStore(tmp_path)
    (tmp_path / "status.json").mkdir()  # nothing can replace a directory with a file
    with caplog.at_level(logging.INFO):
        assert not store.save_status()
        assert not store.save_status()
        (tmp_path / "status.json").rmdir()
        assert store.save_status()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write status.json" in m for m in messages) == 1
    assert any("works again" in m for m in messages)


def test_damaged_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text("{not json")
    (tmp_path / "desired.json").write_text('{"generation": "x"}')
    assert load_status(tmp_path).samples_taken == 0
    assert load_desired(tmp_path) is None


def test_server_text_becomes_one_bounded_line() -> None:
    assert one_line("a\nb\r\n\x1b[31mc\td") == "a b [31mc d"
    assert len(one_line("x" * 1000)) == 300
    assert problem_detail(401, b'{"detail": "revoked"}') == "HTTP 401: revoked"
    assert problem_detail(502, b"<html>") == "HTTP 502 without a problem detail (6 bytes)"
