"""Wakes devices holding a watch request as soon as their desired generation moves."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable


class DesiredStateWatchers:
    """Per-device wake-ups for long-polling agents, in this process."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)

    def register(self, device_pk: int) -> asyncio.Event:
        """An event set when this device's desired state changes; release it when done."""
        event = asyncio.Event()
        self._waiters[device_pk].add(event)
        return event

    def release(self, device_pk: int, event: asyncio.Event) -> None:
        """Forget a waiter (the request answered or went away)."""
        waiters = self._waiters.get(device_pk)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[device_pk]

    def notify(self, device_pks: Iterable[int]) -> None:
        """Wake every watcher of these devices."""
        for pk in device_pks:
            for event in self._waiters.get(pk, ()):
                event.set()

    def wake_all(self) -> None:
        """Wake every held watch (server shutdown): each answers with its current generation."""
        self.notify(list(self._waiters))

    @property
    def watching(self) -> int:
        """How many watch requests are being held."""
        return sum(len(waiters) for waiters in self._waiters.values())
