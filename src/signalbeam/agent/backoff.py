"""Retry delays: exponential backoff with full jitter and a cap (pure, no clock, no I/O)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


def full_jitter(attempt: int, base: float, cap: float, draw: Callable[[], float]) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)).

    `draw` returns a number in [0, 1); passing it in keeps this function pure and testable.
    """
    ceiling: float = min(cap, base * 2.0 ** min(attempt, 62))
    return max(0.0, ceiling * draw())


@dataclass
class Backoff:
    """Counts consecutive failures and hands out the next delay; `reset` after a success."""

    base: float = 1.0
    cap: float = 60.0
    draw: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next try; each call doubles the ceiling until the cap."""
        delay = full_jitter(self.attempt, self.base, self.cap, self.draw)
        self.attempt += 1
        return delay

    def probe_delay(self, interval: float) -> float:
        """The delay before the next try when nothing answered at all: about one interval.

        Backing off protects a server that answers with errors. A silent network needs no
        protecting: retrying it at the sync interval costs what syncing costs, and brings the
        device back within an interval of the link. The jitter, [interval/2, interval), spreads
        a fleet whose link returns at once over that interval. The failure still counts.
        """
        self.attempt += 1
        return interval * (0.5 + 0.5 * self.draw())

    def reset(self) -> None:
        """Forget the failures: the next delay starts from `base` again."""
        self.attempt = 0

    @property
    def failing(self) -> bool:
        """True after at least one failure since the last reset."""
        return self.attempt > 0
