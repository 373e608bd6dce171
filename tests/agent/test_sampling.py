"""A sample is taken every interval while a sync hangs, and the sync's answer still comes back."""

from __future__ import annotations

import asyncio

import pytest

from signalbeam.agent.sampling import meanwhile


async def test_samples_are_taken_while_the_call_hangs_and_its_result_returned() -> None:
    samples: list[int] = []
    third = asyncio.Event()

    async def sample() -> None:
        samples.append(len(samples))
        if len(samples) == 3:
            third.set()

    async def hanging_sync() -> str:
        await third.wait()  # answers only once three samples were taken meanwhile
        return "answered"

    assert await meanwhile(hanging_sync(), 0.01, sample) == "answered"
    assert samples == [0, 1, 2]


async def test_a_quick_call_takes_no_extra_sample_and_its_error_propagates() -> None:
    taken: list[None] = []

    async def sample() -> None:
        taken.append(None)

    async def refused() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(ConnectionRefusedError):
        await meanwhile(refused(), 60, sample)
    assert taken == []


async def test_cancelling_the_wait_cancels_the_call() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def endless() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def sample() -> None:
        return None

    waiting = asyncio.create_task(meanwhile(endless(), 60, sample))
    await started.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled.is_set()
