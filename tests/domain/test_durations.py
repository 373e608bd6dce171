"""Human durations, as people type them on the CLI and in the API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from signalbeam.domain.durations import format_duration, parse_duration
from signalbeam.domain.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "1y", "h1", "1h30", "-5m", "1.5.2h"])
def test_rejects_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_duration(text, field="expires_in")
    assert raised.value.field == "expires_in"
    assert "1h30m" in raised.value.detail


@pytest.mark.parametrize("seconds", [0, 1, 59, 61, 3600, 86400 + 61, 7 * 86400])
def test_format_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
