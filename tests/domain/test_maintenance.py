"""Maintenance windows: parsing, edges, midnight, and the device's timezone versus UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.maintenance import MaintenanceWindow, parse_windows, window_open

# 2026-03-02 is a Monday; Oslo is UTC+1 in March before the switch to summer time.
MONDAY = 2


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time on the given day of March 2026 (2 = Monday ... 8 = Sunday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def one(text: str) -> MaintenanceWindow:
    (window,) = parse_windows(text)
    return window


@pytest.mark.parametrize(
    ("text", "days", "start", "end", "utc"),
    [
        ("Mon-Fri 01:00-05:00", (0, 1, 2, 3, 4), 60, 300, False),
        ("Sat,Sun 00:00-24:00", (5, 6), 0, 1440, False),
        ("22:00-04:00", (0, 1, 2, 3, 4, 5, 6), 1320, 240, False),
        ("fri-mon 22:30-02:00 utc", (0, 4, 5, 6), 1350, 120, True),
        ("Monday,Wed 9:00 - 17:30", (0, 2), 540, 1050, False),
        ("Tue 22:00-00:00", (1,), 1320, 1440, False),
    ],
)
def test_parse(text: str, days: tuple[int, ...], start: int, end: int, utc: bool) -> None:
    assert one(text) == MaintenanceWindow(days, start, end, utc)


@pytest.mark.parametrize(
    "text",
    ["Mon-Fri 01:00-05:00", "Sat,Sun 00:00-24:00", "22:00-04:00 UTC", "Mon,Fri-Sun 22:00-02:00"],
)
def test_text_round_trips(text: str) -> None:
    assert parse_windows(str(one(text))) == parse_windows(text)


def test_several_windows_and_none() -> None:
    assert len(parse_windows("Mon-Fri 01:00-05:00; Sat,Sun 00:00-24:00")) == 2
    assert parse_windows("  ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon-Fri", "not a maintenance window"),
        ("nights", "not a maintenance window"),
        ("Funday 01:00-02:00", "not a day"),
        ("Mo 01:00-02:00", "not a day"),
        ("25:00-26:00", "not a time of day"),
        ("01:60-02:00", "not a time of day"),
        ("24:30-02:00", "not a time of day"),
        ("05:00-05:00", "00:00-24:00"),
        ("24:00-05:00", "00:00-24:00"),
        ("Mon-Fri 01:00-05:00;", "not a maintenance window"),
    ],
)
def test_bad_windows_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_windows(text, field="window")
    assert raised.value.field == "window"


def test_start_is_inside_and_end_is_outside() -> None:
    window = parse_windows("Mon-Fri 01:00-05:00 UTC")
    assert not window_open(window, at(MONDAY, 0, 59))
    assert window_open(window, at(MONDAY, 1, 0))
    assert window_open(window, at(MONDAY, 4, 59))
    assert not window_open(window, at(MONDAY, 5, 0))
    assert not window_open(window, at(7, 2))  # Saturday


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens() -> None:
    window = parse_windows("Fri 22:00-04:00 UTC")
    friday, saturday = 6, 7
    assert not window_open(window, at(friday, 3))  # Thursday night's window does not exist
    assert window_open(window, at(friday, 22))
    assert window_open(window, at(friday, 23, 59))
    assert window_open(window, at(saturday, 0))
    assert window_open(window, at(saturday, 3, 59))
    assert not window_open(window, at(saturday, 4))
    assert not window_open(window, at(saturday, 22))


def test_a_whole_day() -> None:
    window = parse_windows("Sun 00:00-24:00 UTC")
    assert window_open(window, at(8, 0))
    assert window_open(window, at(8, 23, 59))
    assert not window_open(window, at(9, 0))


def test_windows_follow_the_device_clock_unless_they_say_utc() -> None:
    local, utc = parse_windows("Mon 01:00-05:00"), parse_windows("Mon 01:00-05:00 UTC")
    half_past_midnight = at(MONDAY, 0, 30)  # 01:30 in Oslo, 09:30 in Tokyo
    assert window_open(local, half_past_midnight, "Europe/Oslo")
    assert not window_open(utc, half_past_midnight, "Europe/Oslo")
    assert not window_open(local, half_past_midnight, "Asia/Tokyo")
    assert not window_open(local, half_past_midnight, None)


def test_the_device_clock_can_move_the_day() -> None:
    window = parse_windows("Mon 00:00-02:00")
    sunday_evening_utc = at(1, 23, 30)  # already Monday 00:30 in Oslo
    assert window_open(window, sunday_evening_utc, "Europe/Oslo")
    assert not window_open(window, sunday_evening_utc, "UTC")


@pytest.mark.parametrize("timezone", [None, "", "Mars/Olympus", "../etc/passwd"])
def test_an_unknown_timezone_counts_as_utc(timezone: str | None) -> None:
    window = parse_windows("Mon 01:00-05:00")
    assert window_open(window, at(MONDAY, 1), timezone)
    assert not window_open(window, at(MONDAY, 6), timezone)


def test_no_windows_means_any_time() -> None:
    assert window_open((), at(MONDAY, 3), "Europe/Oslo")


@given(start=st.integers(0, 1439), length=st.integers(1, 1439), minute=st.integers(0, 7 * 1440 - 1))
def test_every_day_window_is_open_for_exactly_its_length(
    start: int, length: int, minute: int
) -> None:
    end = (start + length) % 1440 or 1440
    window = MaintenanceWindow(tuple(range(7)), start, end, utc=True)
    moment = at(MONDAY, 0).replace(day=MONDAY + minute // 1440, hour=minute % 1440 // 60)
    moment = moment.replace(minute=minute % 60)
    offset = (minute % 1440 - start) % 1440
    assert window.contains(moment) == (offset < length)
