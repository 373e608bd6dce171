"""Maintenance windows such as `Mon-Fri 01:00-05:00`: when a rollout may start updating a device.

A window names the days it opens on and a time span; a span whose end is not after its start
crosses midnight and closes on the next day (`Fri 22:00-04:00` closes on Saturday 04:00).
Times are the device's local time unless the window ends in `UTC`; a device whose timezone is
unknown is treated as UTC so it is never stranded outside every window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signalbeam.domain.errors import InvalidInput

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVERY_DAY = tuple(range(7))
MINUTES_PER_DAY = 24 * 60

_WINDOW = re.compile(
    r"(?:(?P<days>[A-Za-z ,-]+?)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?:\s+(?P<utc>utc))?",
    re.IGNORECASE,
)
_EXAMPLE = 'write it like "Mon-Fri 01:00-05:00", "Sat,Sun 00:00-24:00" or "22:00-04:00 UTC"'


@dataclass(frozen=True)
class MaintenanceWindow:
    """Opens on `days` (0 = Monday) at `start` minutes past midnight, lasts until `end`."""

    days: tuple[int, ...]
    start: int
    end: int
    utc: bool = False

    def __str__(self) -> str:
        days = "" if self.days == EVERY_DAY else _format_days(self.days) + " "
        zone = " UTC" if self.utc else ""
        return f"{days}{_format_time(self.start)}-{_format_time(self.end)}{zone}"

    @property
    def crosses_midnight(self) -> bool:
        """True when the window closes on the day after it opens."""
        return self.end <= self.start

    def contains(self, local: datetime) -> bool:
        """True when `local` (a wall-clock time in the window's zone) falls inside the window."""
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if not self.crosses_midnight:
            return today in self.days and self.start <= minute < self.end
        # The evening part belongs to the opening day, the morning part to the day after it.
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )


def parse_windows(text: str, *, field: str = "window") -> tuple[MaintenanceWindow, ...]:
    """Parse `;`-separated windows; an empty text means "any time" (no windows)."""
    parts = [part.strip() for part in text.split(";")]
    if parts == [""]:
        return ()
    return tuple(_parse_window(part, field) for part in parts)


def window_open(
    windows: Sequence[MaintenanceWindow], now: datetime, timezone: str | None = None
) -> bool:
    """True when a device in `timezone` may start updating at `now` (no windows: always)."""
    if not windows:
        return True
    local = now.astimezone(device_zone(timezone))
    return any(w.contains(now.astimezone(UTC) if w.utc else local) for w in windows)


def device_zone(timezone: str | None) -> tzinfo:
    """The device's zone by IANA name; UTC when unknown, so a bad fact never blocks updates."""
    if not timezone:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _parse_window(text: str, field: str) -> MaintenanceWindow:
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise InvalidInput(f'"{text}" is not a maintenance window; {_EXAMPLE}', field=field)
    start = _parse_time(match["start"], text, field)
    end = _parse_time(match["end"], text, field)
    if start in (end, MINUTES_PER_DAY):
        raise InvalidInput(
            f'maintenance window "{text}" opens and closes at the same time; '
            'write "00:00-24:00" for a whole day',
            field=field,
        )
    days = _parse_days(match["days"], text, field) if match["days"] else EVERY_DAY
    return MaintenanceWindow(
        days, start, end % MINUTES_PER_DAY or MINUTES_PER_DAY, bool(match["utc"])
    )


def _parse_time(text: str, window: str, field: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise InvalidInput(
            f'"{text}" in maintenance window "{window}" is not a time of day; use 00:00 to 24:00',
            field=field,
        )
    return hours * 60 + minutes


def _parse_days(text: str, window: str, field: str) -> tuple[int, ...]:
    days: set[int] = set()
    for item in text.replace(" ", "").split(","):
        first, _, last = item.partition("-")
        start = _parse_day(first, window, field)
        stop = _parse_day(last, window, field) if last else start
        # Ranges wrap around the week, so "Fri-Mon" means Friday to Monday.
        days.update((start + offset) % 7 for offset in range((stop - start) % 7 + 1))
    return tuple(sorted(days))


def _parse_day(text: str, window: str, field: str) -> int:
    name = text.lower()
    for index, full in enumerate(_FULL_NAMES):
        if len(name) >= 3 and full.startswith(name):
            return index
    raise InvalidInput(
        f'"{text}" in maintenance window "{window}" is not a day; use Mon, Tue, Wed, Thu, Fri, '
        "Sat or Sun, ranges like Mon-Fri and lists like Sat,Sun",
        field=field,
    )


def _format_days(days: tuple[int, ...]) -> str:
    contiguous = len(days) > 2 and days == tuple(range(days[0], days[-1] + 1))
    if contiguous:
        return f"{DAY_NAMES[days[0]].title()}-{DAY_NAMES[days[-1]].title()}"
    return ",".join(DAY_NAMES[day].title() for day in days)


def _format_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
