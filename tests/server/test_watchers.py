"""Held watches and the server stopping: every watch answers before the graceful shutdown ends."""

from __future__ import annotations

from signalbeam.server.services.watch import DesiredStateWatchers


async def test_a_stop_wakes_held_watches_and_every_watch_after_it() -> None:
    watchers = DesiredStateWatchers()
    held = watchers.register(1)
    assert not held.is_set()
    watchers.wake_all()
    assert held.is_set(), "a held watch answers when the server begins to stop"
    late = watchers.register(2)
    assert late.is_set(), "a watch arriving while the server stops is not held"
