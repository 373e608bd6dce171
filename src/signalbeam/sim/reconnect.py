"""When a virtual device tries again after a failed request: the real agent's rules.

The agent (`signalbeam.agent.loop`, `_failed`) retries a server that did not answer at all
about once a sync interval, jittered over its second half, and backs off exponentially from a
server that answered with an error, honouring Retry-After. Its watch (`agent.watch`) waits for
the next good sync and backs off on its own. The simulator reuses the agent's pure `Backoff`, so
a simulated fleet coming back after an outage spreads itself the way real devices do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from signalbeam.agent.backoff import Backoff

# The agent never retries sooner than this (`agent.loop.MIN_RETRY_SECONDS`).
MIN_RETRY_SECONDS = 0.25
# The agent gives a connect 4 s (`agent.client.CONNECT_SECONDS`). One simulator process runs
# thousands of devices on one event loop, which on a busy machine runs a connect's callbacks
# seconds late (5 s measured with 4,000 devices beside test suites): 4 s would count the
# simulator's own lag as failed connects, so it allows 10 s.
CONNECT_SECONDS = 10.0
# A Retry-After beyond an hour is taken as a mistake, as the agent does.
MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_after(response: httpx.Response) -> float | None:
    """The seconds of a numeric Retry-After header, None when absent or out of range."""
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if 0 <= value <= MAX_RETRY_AFTER_SECONDS else None


@dataclass
class Reconnect:
    """The delays of one device's sync loop and watch after failures (pure but for `draw`)."""

    interval: float
    draw: Callable[[], float] = field(default=random.random)
    sync: Backoff = field(init=False)
    watch: Backoff = field(init=False)

    def __post_init__(self) -> None:
        self.sync = Backoff(draw=self.draw)
        self.watch = Backoff(base=1.0, cap=60.0, draw=self.draw)

    def synced(self) -> None:
        """A sync was answered: the next failure starts the backoff afresh."""
        self.sync.reset()

    def unreachable(self) -> float:
        """Seconds until the next sync when nothing answered (refused, reset, timed out)."""
        return max(MIN_RETRY_SECONDS, self.sync.probe_delay(self.interval))

    def refused(self, after: float | None) -> float:
        """Seconds until the next sync when the server answered with an error (5xx, 429...)."""
        return max(MIN_RETRY_SECONDS, self.sync.next_delay(), after or 0.0)

    def watch_failed(self) -> float:
        """Seconds before the next watch after a failed one."""
        return self.watch.next_delay()

    def watch_held(self) -> None:
        """A watch was answered: the next failure starts the watch's backoff afresh."""
        self.watch.reset()
