"""The agent's side of device actions, against a loopback relay: reboot, restart, refusals.

Remote access stays off in every test here: actions are not remote access.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.relay_support import (
    BOUND,
    Relay,
    log_sources,
    opened,
    relay,
    runner,
    session,
)


@pytest.fixture
async def server() -> AsyncIterator[Relay]:
    async with relay() as running:
        yield running


def fake_reboot(tmp_path: Path, code: int = 0) -> str:
    """A reboot_command that notes it ran (the test machine never reboots) and exits `code`."""
    script = tmp_path / "fake-reboot.py"
    script.write_text(
        "import pathlib, sys\n"
        "pathlib.Path(sys.argv[1]).write_text('rebooted')\n"
        "print('Failed to reboot: Access denied' if int(sys.argv[2]) else 'ok')\n"
        "sys.exit(int(sys.argv[2]))\n"
    )
    return f"{sys.executable} {script} {tmp_path / 'marker'} {code}"


async def test_reboot_runs_the_configured_command_then_answers(
    server: Relay, tmp_path: Path
) -> None:
    sessions = runner(server, tmp_path, reboot_command=fake_reboot(tmp_path))
    try:
        seen = await session(server, sessions, "action", action="reboot")
    finally:
        await sessions.close()
    assert seen.last == {
        "type": "exit",
        "code": 0,
        "detail": f"rebooting ({fake_reboot(tmp_path)})",
    }
    assert (tmp_path / "marker").read_text() == "rebooted"


async def test_a_reboot_command_that_fails_says_so_and_where_to_change_it(
    server: Relay, tmp_path: Path
) -> None:
    failing = fake_reboot(tmp_path, code=1)
    sessions = runner(server, tmp_path, reboot_command=failing)
    missing = runner(server, tmp_path, reboot_command="/no/such/reboot now")
    try:
        seen = await session(server, sessions, "action", action="reboot")
        absent = await session(server, missing, "action", action="reboot")
    finally:
        await sessions.close()
        await missing.close()
    assert seen.last == {
        "type": "error",
        "detail": f"refused by the device: `{failing}` failed (exit 1): Failed to reboot: "
        "Access denied; the device did not reboot. Set reboot_command in "
        f"{tmp_path / 'agent.toml'} to a command that reboots it",
    }
    detail = absent.last["detail"]
    assert detail.startswith("refused by the device: `/no/such/reboot now` could not run: ")
    assert "No such file or directory" in detail


async def test_restart_names_the_units_there_are(server: Relay, tmp_path: Path) -> None:
    sources = log_sources(tmp_path, {"relay": "app"})
    sessions = runner(server, tmp_path, sources=sources)
    try:
        seen = await session(server, sessions, "action", action="restart", unit="web")
        unknown = await session(server, sessions, "action", action="explode")
    finally:
        await sessions.close()
    assert seen.last == {
        "type": "error",
        "detail": "refused by the device: no unit 'web' on this device; units: relay",
    }
    assert unknown.last["detail"] == (
        "refused by the device: this agent does not know the action 'explode'; update it"
    )


async def test_restart_agent_answers_before_the_agent_goes(server: Relay, tmp_path: Path) -> None:
    sessions = runner(server, tmp_path)
    asked: list[str] = []
    sessions.restart_agent = lambda: asked.append("restart")
    alone = runner(server, tmp_path)
    try:
        ws = await opened(server, sessions, "action", action="restart-agent")
        answer: Any = await asyncio.wait_for(ws.recv(), BOUND)
        assert answer == '{"type":"exit","code":0,"detail":"restarting the agent"}'
        # The agent waits for the server to have read it (it closes), then restarts.
        assert asked == []
        await ws.close()
        await _until(lambda: asked == ["restart"])
        refused = await session(server, alone, "action", action="restart-agent")
    finally:
        await sessions.close()
        await alone.close()
    assert "cannot restart itself here" in refused.last["detail"]


async def _until(check: Any) -> None:
    deadline = asyncio.get_running_loop().time() + BOUND
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the agent never restarted"
        await asyncio.sleep(0.02)
