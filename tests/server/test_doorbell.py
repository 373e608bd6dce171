"""The delivery worker's doorbell: rung early, waited with a timeout, never deaf to a stop."""

from __future__ import annotations

import asyncio

import pytest

from signalbeam.server.runtime import Doorbell


async def test_a_stop_that_arrives_as_the_bell_rings_still_stops_the_waiter() -> None:
    bell = Doorbell()
    waiter = asyncio.create_task(bell.wait(60))
    await asyncio.sleep(0)  # the waiter is waiting
    bell.ring()
    waiter.cancel()  # the server stops in the same turn of the loop
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_ring_before_the_wait_is_not_lost_and_is_used_once() -> None:
    bell = Doorbell()
    bell.ring()
    await asyncio.wait_for(bell.wait(60), 5)  # returns at once: rung since the last wait
    waiter = asyncio.create_task(bell.wait(60))
    await asyncio.sleep(0)
    assert not waiter.done(), "one ring wakes one wait"
    bell.ring()
    await asyncio.wait_for(waiter, 5)
