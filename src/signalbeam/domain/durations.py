"""Human durations such as `90s`, `15m`, `24h`, `7d` and `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

from signalbeam.domain.errors import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any expiry or wait means anything, and far inside what dates can hold.
MAX_SECONDS = 100 * 365 * 86400


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    """Parse `1h30m`-style text; a bare number means seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return _bounded(text, float(cleaned), field)
    parts = _PART.findall(cleaned)
    if not cleaned or "".join(number + unit for number, unit in parts) != cleaned:
        raise InvalidInput(
            f'"{text}" is not a duration; write it like 90s, 15m, 24h, 7d or 1h30m', field=field
        )
    return _bounded(text, sum(float(number) * _UNITS[unit] for number, unit in parts), field)


class DurationTooLong(InvalidInput):
    """Longer than MAX_SECONDS; callers with a tighter bound say theirs instead."""


def _bounded(text: str, seconds: float, field: str) -> timedelta:
    if seconds > MAX_SECONDS:
        raise DurationTooLong(
            f'"{text}" is longer than 100 years; use a shorter duration', field=field
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest `1h30m`-style text for a duration (whole seconds)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def coarse_duration(seconds: float) -> str:
    """One rounded unit for a person: `45s`, `12m`, `3h`, `9d`."""
    # Round to the nearest unit, so a token made to last 7d reads "in 7d", not "in 6d".
    for unit, size, below in (("s", 1, 60), ("m", 60, 60), ("h", 3600, 48)):
        if round(seconds / size) < below:
            return f"{round(seconds / size)}{unit}"
    return f"{round(seconds / 86400)}d"
