"""Device actions in tasks the control plane owns: a reader may go, the run goes on, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from signalbeam.domain.errors import Conflict
from signalbeam.server.services.action_results import ActionResult
from signalbeam.server.services.action_runs import ActionRuns


async def answers(gate: asyncio.Event, recorded: list[str]) -> AsyncIterator[ActionResult]:
    """pi-1 answers at once; pi-2 once the gate opens. Each answer is 'recorded' first."""
    for device_id in ("pi-1", "pi-2"):
        if device_id == "pi-2":
            await gate.wait()
        recorded.append(device_id)
        yield ActionResult(device_id, "done", "restarted app web")


async def test_a_run_outlives_its_reader_and_runs_are_bounded() -> None:
    runs, gate, recorded = ActionRuns(limit=1), asyncio.Event(), list[str]()
    reader = runs.start(answers(gate, recorded), devices=2)
    assert (await anext(reader)).device_id == "pi-1"
    await reader.aclose()  # the operator pressed Ctrl-C
    with pytest.raises(Conflict, match="1 device actions are already under way"):
        runs.start(answers(gate, []), devices=2)
    gate.set()
    await runs.close()
    assert recorded == ["pi-1", "pi-2"] and runs.running == 0
    with pytest.raises(Conflict, match="shutting down"):
        runs.start(answers(gate, []), devices=2)
