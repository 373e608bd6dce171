"""The CLI's pure pieces: SSE frames, relative times, page footers and label changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signalbeam.cli import arguments, sse
from signalbeam.cli.output import CliError, ago, page_footer

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_sse_frames_skip_keepalives_and_join_data_lines() -> None:
    lines = [
        ": connected",
        "",
        "id: 7",
        "event: device.online",
        "data: {",
        "data: }",
        "",
        ": keep-alive",
        "",
    ]
    assert list(sse.frames(lines)) == [sse.Frame("7", "device.online", "{\n}")]


def test_sse_frame_without_data_is_dropped_and_id_carries_over() -> None:
    lines = ["id: 3", "event: ignored", "", "data:x", ""]
    assert list(sse.frames(lines)) == [sse.Frame("3", "message", "x")]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (None, "never"),
        (NOW, "just now"),
        (NOW - timedelta(seconds=12), "12s ago"),
        (NOW - timedelta(hours=3, minutes=10), "3h ago"),
        (NOW - timedelta(days=3), "3d ago"),
        (NOW + timedelta(days=7) - timedelta(seconds=1), "in 7d"),
        (NOW - timedelta(seconds=3599), "1h ago"),
    ],
)
def test_relative_times_read_like_a_person_would_say_them(
    moment: datetime | None, text: str
) -> None:
    assert ago(moment, now=NOW) == text


def test_page_footer() -> None:
    assert page_footer(0, 50, 230) == "showing 1-50 of 230"
    assert page_footer(200, 30, 230) == "showing 201-230 of 230"
    assert page_footer(0, 0, 0) == "showing 0 of 0"


def test_label_changes_set_and_remove() -> None:
    assert arguments.label_changes(["env=prod", "old-", "site=oslo"]) == (
        {"env": "prod", "site": "oslo"},
        ["old"],
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (["env"], 'label "env" must look like key=value'),
        (["env=prod", "env-"], "label env is both set and removed"),
        (["-"], "key is empty"),
    ],
)
def test_bad_label_changes_say_what_to_write(changes: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        arguments.label_changes(changes)


def test_expiry_accepts_never_and_durations() -> None:
    assert arguments.expires_in("never") is None
    assert arguments.expires_in("1d12h") == "1d12h"
    with pytest.raises(CliError, match='"soon" is not a duration'):
        arguments.expires_in("soon")
