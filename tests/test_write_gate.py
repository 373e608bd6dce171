"""The write gate: ingest batches side by side, the presence sweep alone and never starved."""

from __future__ import annotations

import asyncio

from signalbeam.server.workers.write_gate import WriteGate


async def hold(gate: WriteGate, kind: str, entered: asyncio.Event, leave: asyncio.Event) -> None:
    """Enter the gate as `kind`, say so, and stay until told to leave."""
    async with gate.shared() if kind == "shared" else gate.exclusive():
        entered.set()
        await leave.wait()


async def settle() -> None:
    """Let every task that can run, run (the gate has no timers, so a few turns suffice)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_shared_holders_write_side_by_side() -> None:
    gate = WriteGate()
    leave = asyncio.Event()
    entered = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(hold(gate, "shared", e, leave)) for e in entered]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered)), timeout=5)
    leave.set()
    await asyncio.gather(*tasks)


async def test_exclusive_waits_for_shared_and_holds_new_shared_back() -> None:
    gate = WriteGate()
    batch_in, batch_out = asyncio.Event(), asyncio.Event()
    batch = asyncio.create_task(hold(gate, "shared", batch_in, batch_out))
    await batch_in.wait()

    sweep_in, sweep_out = asyncio.Event(), asyncio.Event()
    sweep = asyncio.create_task(hold(gate, "exclusive", sweep_in, sweep_out))
    late_in, late_out = asyncio.Event(), asyncio.Event()
    late = asyncio.create_task(hold(gate, "shared", late_in, late_out))
    await settle()
    assert not sweep_in.is_set(), "the sweep must wait for the batch already writing"
    assert not late_in.is_set(), "a waiting sweep holds new batches back"

    batch_out.set()
    await asyncio.wait_for(sweep_in.wait(), timeout=5)
    await settle()
    assert not late_in.is_set(), "no batch writes while the sweep holds the gate"

    sweep_out.set()
    await asyncio.wait_for(late_in.wait(), timeout=5)
    late_out.set()
    await asyncio.gather(batch, sweep, late)


async def test_a_cancelled_exclusive_waiter_releases_the_shared_ones() -> None:
    gate = WriteGate()
    batch_in, batch_out = asyncio.Event(), asyncio.Event()
    batch = asyncio.create_task(hold(gate, "shared", batch_in, batch_out))
    await batch_in.wait()
    sweep = asyncio.create_task(hold(gate, "exclusive", asyncio.Event(), asyncio.Event()))
    late_in, late_out = asyncio.Event(), asyncio.Event()
    late = asyncio.create_task(hold(gate, "shared", late_in, late_out))
    await settle()
    assert not late_in.is_set()

    sweep.cancel()
    await asyncio.wait_for(late_in.wait(), timeout=5)
    batch_out.set()
    late_out.set()
    await asyncio.gather(batch, late)
