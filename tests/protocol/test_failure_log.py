"""A failed update's report carries the failing unit's last lines, bounded on both ends."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from signalbeam.agent import wire
from signalbeam.agent.failure_log import clip
from signalbeam.protocol.device_v1 import (
    FAILURE_LOG_LINE_CHARS,
    FAILURE_LOG_LINES,
    ReportedState,
    SyncRequest,
)

FAILED: dict[str, Any] = {
    "generation": 3,
    "status": "failed",
    "reason": "relay@1.2.0 failed: app relay-controller exited with code 3 while starting",
    "failed_unit": "relay-controller",
}


def test_fifty_lines_of_the_longest_kind_are_accepted_by_server_and_agent() -> None:
    lines = [f"{n:03d} " + "x" * (FAILURE_LOG_LINE_CHARS - 4) for n in range(FAILURE_LOG_LINES)]
    document = {**FAILED, "failure_log": lines}
    assert ReportedState.model_validate(document).failure_log == lines
    assert wire.convert(document, wire.ReportedState).failure_log == lines
    # The whole log stays under 16 KiB, so a report (and the event beside it) stays small.
    assert len("\n".join(lines).encode()) < 16 * 1024


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"failure_log": ["line"] * (FAILURE_LOG_LINES + 1)}, "failure_log"),
        ({"failure_log": ["x" * (FAILURE_LOG_LINE_CHARS + 1)]}, "failure_log.0"),
        ({"failed_unit": "u" * 129}, "failed_unit"),
        ({"failure_log": "one string, not lines"}, "failure_log"),
    ],
)
def test_a_log_past_its_bounds_is_refused_by_both(change: dict[str, Any], where: str) -> None:
    document = {**FAILED, "failure_log": ["ok"], **change}
    with pytest.raises(ValidationError) as refused:
        ReportedState.model_validate(document)
    assert ".".join(str(p) for p in refused.value.errors()[0]["loc"]) == where
    with pytest.raises(msgspec.ValidationError):
        wire.convert(document, wire.ReportedState)


def test_a_report_without_a_failure_log_reads_as_before_to_an_older_server() -> None:
    """The agent leaves the new fields out unless set: a server that predates them (and
    refuses fields it does not know) takes every report that carries no failure log."""
    running = wire.ReportedState(generation=2, status="running", bundle="relay", version="1")
    sent = json.loads(wire.encode(wire.SyncRequest(reported=running)))
    assert "failed_unit" not in sent["reported"] and "failure_log" not in sent["reported"]
    # ...and what it leaves out, a current server reads as no log at all.
    read = SyncRequest.model_validate(sent).reported
    assert (read.failed_unit, read.failure_log) == (None, [])


def test_older_agents_reports_are_read_with_no_log() -> None:
    read = ReportedState.model_validate({"generation": 1, "status": "failed", "reason": "x"})
    assert (read.failed_unit, read.failure_log) == (None, [])


def test_the_agent_clips_output_to_what_the_report_allows() -> None:
    output = "".join(f"line {n}\n" for n in range(80)) + "y" * 1000 + "\n\n\n"
    lines = clip(output)
    assert len(lines) == FAILURE_LOG_LINES
    assert lines[0] == "line 31" and lines[-2] == "line 79"
    assert len(lines[-1]) == FAILURE_LOG_LINE_CHARS and lines[-1].endswith("…")
    # Whatever a unit wrote, the clipped lines always make a report the server accepts.
    wire.checked(wire.ReportedState(**FAILED, failure_log=lines))
    ReportedState.model_validate({**FAILED, "failure_log": lines})


def test_a_progress_bar_stays_one_line_and_crlf_endings_go() -> None:
    assert clip("downloading 10%\r20%\r30%\r\nKilled\r\n") == [
        "downloading 10%\r20%\r30%",
        "Killed",
    ]
    assert clip("") == []
