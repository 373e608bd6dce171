"""The SessionRunner: each offer once, at most max_sessions at a time, idle sessions ended."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signalbeam.protocol.sessions import open_message
from tests.agent.relay_support import (
    BOUND,
    Relay,
    opened,
    read_all,
    read_until,
    relay,
    runner,
    session,
    until,
)
from tests.agent.test_session_exec import group_gone


@pytest.fixture
async def server() -> AsyncIterator[Relay]:
    async with relay() as running:
        yield running


async def test_a_repeated_offer_runs_the_session_once(server: Relay, tmp_path: Path) -> None:
    sessions = runner(server, tmp_path)
    try:
        first = uuid.uuid4().hex
        sessions.offer(first)
        sessions.offer(first)  # the next watch answer named it again
        ws = await server.device(first)
        await ws.send(open_message(first, "logs", actor="tester@example.com"))
        assert (await asyncio.wait_for(read_all(ws), BOUND)).last["code"] == 0
        sessions.offer(first)  # and again, after it ended
        # The next connection is the next session's: the first never connected twice.
        seen = await session(server, sessions, "logs")
        assert seen.last == {"type": "exit", "code": 0}
    finally:
        await sessions.close()


async def test_sessions_over_max_sessions_are_refused_with_where_to_raise_it(
    server: Relay, tmp_path: Path
) -> None:
    (tmp_path / "agent.log").write_text("started\n")
    sessions = runner(server, tmp_path, max_sessions=1)
    try:
        held = await opened(server, sessions, "logs", unit="agent", follow=True)
        await read_until(held, b"started\n")
        refused = await session(server, sessions, "logs")
        assert refused.last == {
            "type": "error",
            "detail": "this device already runs 1 sessions; try again when one ends, "
            f"or raise max_sessions in {tmp_path / 'agent.toml'}",
        }
        await held.close()
        await until(lambda: sessions.running == 0, "the held session to end")
        assert (await session(server, sessions, "logs")).last["code"] == 0
    finally:
        await sessions.close()


async def test_an_idle_session_ends_and_takes_its_command_along(
    server: Relay, tmp_path: Path
) -> None:
    sessions = runner(server, tmp_path, remote_access=True, session_idle_timeout=0.3)
    try:
        ws = await opened(server, sessions, "exec", command=["sh", "-c", "echo $$; exec cat"])
        pgid = int(await read_until(ws, b"\n"))
        seen = await asyncio.wait_for(read_all(ws), BOUND)
        assert seen.controls == [{"type": "error", "detail": "idle for 0.3 s; session ended"}]
        await until(lambda: group_gone(pgid), f"process group {pgid} to be gone")
    finally:
        await sessions.close()
