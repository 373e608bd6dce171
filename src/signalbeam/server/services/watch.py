"""Wakes devices holding a watch request as soon as their desired generation moves."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any


class DesiredStateWatchers:
    """Per-device wake-ups for long-polling agents, in this process."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._generations: dict[int, int] = {}
        # The desired state the last wake-up announced; shared dicts, one per assignment.
        self._specs: dict[int, dict[str, Any]] = {}
        self._stopping = False

    def register(self, device_pk: int) -> asyncio.Event:
        """An event set when this device's desired state changes; release it when done."""
        event = asyncio.Event()
        if self._stopping:
            # A watch that comes after the server began to stop answers at once: held, it
            # outlived the graceful shutdown and was cancelled with an HTTP 500.
            event.set()
        self._waiters[device_pk].add(event)
        return event

    def release(self, device_pk: int, event: asyncio.Event) -> None:
        """Forget a waiter (the request answered or went away)."""
        waiters = self._waiters.get(device_pk)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[device_pk]
                self._generations.pop(device_pk, None)
                self._specs.pop(device_pk, None)

    def notify(
        self, generations: Mapping[int, int], specs: Mapping[int, dict[str, Any]] | None = None
    ) -> None:
        """Wake every watcher of these devices, telling them their new generation (and spec)."""
        for pk, generation in generations.items():
            waiters = self._waiters.get(pk)
            if waiters:
                self._generations[pk] = generation
                if specs is not None and pk in specs:
                    self._specs[pk] = specs[pk]
                else:
                    self._specs.pop(pk, None)
                for event in waiters:
                    event.set()

    def poke(self, device_pk: int) -> None:
        """Wake this device's watchers without a new generation (a session is offered)."""
        for event in self._waiters.get(device_pk, ()):
            event.set()

    def spec(self, device_pk: int) -> dict[str, Any] | None:
        """The desired state announced with the last wake-up, if it came with one."""
        return self._specs.get(device_pk)

    def generation(self, device_pk: int) -> int:
        """The generation the last wake-up of this device announced (-1 if none)."""
        return self._generations.get(device_pk, -1)

    def wake_all(self) -> None:
        """Wake every held watch (server shutdown): each answers with its current generation,
        and so does every watch after this."""
        self._stopping = True
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    @property
    def watching(self) -> int:
        """How many watch requests are being held."""
        return sum(len(waiters) for waiters in self._waiters.values())
