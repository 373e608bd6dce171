"""Clocks: a steady one for scheduling, and detection of jumps in the wall clock."""

from __future__ import annotations

import time
from dataclasses import dataclass

# Jumps smaller than this are NTP slewing or scheduling noise, not worth an event.
JUMP_THRESHOLD_SECONDS = 30.0


def steady() -> float:
    """Seconds on a clock that never jumps and keeps counting through suspend where it can."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


def clock_jump(
    before: tuple[float, float],
    after: tuple[float, float],
    threshold: float = JUMP_THRESHOLD_SECONDS,
) -> float | None:
    """How far the wall clock jumped between two (wall, steady) readings, or None if it did not."""
    jump = (after[0] - before[0]) - (after[1] - before[1])
    return jump if abs(jump) >= threshold else None


@dataclass
class ClockWatch:
    """Remembers the last reading and reports a jump since then."""

    threshold: float = JUMP_THRESHOLD_SECONDS
    last: tuple[float, float] | None = None

    def check(self, wall: float | None = None, steady_now: float | None = None) -> float | None:
        """Take a reading (defaults: now) and return the jump since the previous one, if any."""
        reading = (
            time.time() if wall is None else wall,
            steady() if steady_now is None else steady_now,
        )
        previous, self.last = self.last, reading
        return None if previous is None else clock_jump(previous, reading, self.threshold)
