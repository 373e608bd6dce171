"""Exec and shell sessions on the host, through the real SessionRunner and a loopback relay."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signalbeam.agent.session_runner import SessionRunner
from signalbeam.protocol.sessions import STDERR, STDIN, STDOUT, control, frame
from tests.agent.relay_support import (
    BOUND,
    Relay,
    log_sources,
    opened,
    read_all,
    read_until,
    relay,
    runner,
    session,
    until,
)

EOF = control("eof")


@pytest.fixture
async def server() -> AsyncIterator[Relay]:
    async with relay() as running:
        yield running


@pytest.fixture
async def sessions(server: Relay, tmp_path: Path) -> AsyncIterator[SessionRunner]:
    started = runner(server, tmp_path, remote_access=True)
    yield started
    await started.close()


def group_gone(pgid: int) -> bool:
    """True once no process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_output_streams_as_it_comes_in_order_across_stdout_and_stderr(
    server: Relay, sessions: SessionRunner
) -> None:
    # Each step waits for a line of stdin, so the order cannot come from buffering.
    script = "echo one; read a; echo two >&2; read b; echo three; exit 3"
    ws = await opened(server, sessions, "exec", command=["sh", "-c", script])
    assert await read_until(ws, b"one\n") == b"one\n"
    await ws.send(frame(STDIN, b"go\n"))
    assert await read_until(ws, b"two\n") == b"two\n"
    await ws.send(frame(STDIN, b"go\n"))
    seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert seen.output == [(STDOUT, b"three\n")]
    assert seen.controls == [{"type": "exit", "code": 3}]


async def test_stdin_reaches_the_command_and_eof_ends_it(
    server: Relay, sessions: SessionRunner
) -> None:
    big = os.urandom(300_000)  # more than one frame each way
    chunks = [frame(STDIN, big[i : i + 50_000]) for i in range(0, len(big), 50_000)]
    seen = await session(server, sessions, "exec", [*chunks, EOF], command=["cat"])
    assert seen.stdout == big
    assert all(len(data) <= 64 * 1024 for _, data in seen.output)
    assert seen.last == {"type": "exit", "code": 0}


async def test_exit_codes_are_the_commands_own(server: Relay, sessions: SessionRunner) -> None:
    killed = await session(server, sessions, "exec", command=["sh", "-c", "kill -TERM $$"])
    assert killed.last == {"type": "exit", "code": 143}
    missing = await session(server, sessions, "exec", command=["no-such-command-here"])
    assert missing.last == {"type": "exit", "code": 127}
    assert b"command not found: no-such-command-here" in missing.stderr


async def test_a_timeout_kills_the_command_and_exits_124(
    server: Relay, sessions: SessionRunner
) -> None:
    # It ignores SIGTERM, so only the SIGKILL after the grace ends it.
    script = "trap '' TERM; echo started; sleep 600"
    seen = await session(
        server, sessions, "exec", command=["sh", "-c", script], timeout_seconds=0.5
    )
    assert seen.stdout == b"started\n"
    assert b"timed out after 0.5s" in seen.stderr
    assert seen.last == {"type": "exit", "code": 124}


async def test_a_dropped_connection_kills_the_whole_process_group(
    server: Relay, sessions: SessionRunner
) -> None:
    script = "sleep 1000 & sleep 1000 & echo $$; wait"
    ws = await opened(server, sessions, "exec", command=["sh", "-c", script])
    pgid = int(await read_until(ws, b"\n"))
    assert not group_gone(pgid)
    await ws.close()
    await until(lambda: group_gone(pgid), f"process group {pgid} to be gone")


async def test_helpers_left_running_do_not_hold_the_session_open(
    server: Relay, sessions: SessionRunner
) -> None:
    # The shell exits at once; its background sleep still holds stdout. The session ends
    # with the shell's code, and the sleep goes with it.
    seen = await session(server, sessions, "exec", command=["sh", "-c", "sleep 1000 & echo $$"])
    assert seen.last == {"type": "exit", "code": 0}
    pgid = int(seen.stdout)
    await until(lambda: group_gone(pgid), f"process group {pgid} to be gone")


async def test_a_shell_gets_a_real_terminal_that_resizes(
    server: Relay, sessions: SessionRunner
) -> None:
    ws = await opened(server, sessions, "shell", command=["/bin/sh"], tty=True, rows=20, cols=70)
    await ws.send(frame(STDIN, b"stty size\n"))
    assert b"20 70" in await read_until(ws, b"20 70")
    await ws.send(control("resize", rows=33, cols=111))
    await ws.send(frame(STDIN, b"tty; stty size; exit 7\n"))
    seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert b"/dev/pts/" in seen.stdout
    assert b"33 111" in seen.stdout
    assert {stream for stream, _ in seen.output} == {STDOUT}  # a terminal has one stream
    assert seen.last == {"type": "exit", "code": 7}


async def test_a_shell_without_a_command_is_a_login_shell(
    server: Relay, sessions: SessionRunner
) -> None:
    seen = await session(server, sessions, "shell", [frame(STDIN, b"exit 5\n")], tty=True)
    assert seen.last == {"type": "exit", "code": 5}


async def test_exec_and_shell_are_refused_unless_the_device_allows_remote_access(
    server: Relay, tmp_path: Path
) -> None:
    closed = runner(server, tmp_path)
    try:
        for kind in ("exec", "shell"):
            seen = await session(server, closed, kind, command=["id"], tty=kind == "shell")
            assert seen.output == []
            detail = seen.last["detail"]
            assert seen.last["type"] == "error"
            assert detail.startswith(
                "refused by the device: remote access is off in its agent config; "
                f"set remote_access = true in {tmp_path / 'agent.toml'}"
            )
            assert "SIGNALBEAM_AGENT_REMOTE_ACCESS=true" in detail
        logs = await session(server, closed, "logs")
        assert logs.last == {"type": "exit", "code": 0}
    finally:
        await closed.close()


async def test_exec_in_an_app_runs_in_its_directory_with_its_environment(
    server: Relay, tmp_path: Path
) -> None:
    home = tmp_path / "units" / "relay"
    (home / ("f" * 64)).mkdir(parents=True)
    record = {"name": "relay", "sha256": "f" * 64, "env": {"GREETING": "hello from relay"}}
    (home / "unit.json").write_text(json.dumps(record))
    sources = log_sources(tmp_path, {"relay": "app"})
    sessions = runner(server, tmp_path, sources=sources, remote_access=True)
    try:
        script = 'pwd; echo "$GREETING"; echo err >&2'
        seen = await session(server, sessions, "exec", command=["sh", "-c", script], unit="relay")
        assert seen.stdout.decode().splitlines() == [str(home / ("f" * 64)), "hello from relay"]
        assert (STDERR, b"err\n") in seen.output
        assert seen.last == {"type": "exit", "code": 0}
        other = await session(server, sessions, "exec", command=["true"], unit="nginx")
        assert other.last == {
            "type": "error",
            "detail": "refused by the device: no unit 'nginx' on this device; units: relay",
        }
    finally:
        await sessions.close()


async def test_a_terminal_in_an_app_starts_in_its_directory_with_its_environment(
    server: Relay, tmp_path: Path
) -> None:
    workdir = tmp_path / "units" / "relay" / ("e" * 64)
    workdir.mkdir(parents=True)
    record = {"name": "relay", "sha256": "e" * 64, "env": {"GREETING": "hello from relay"}}
    (workdir.parent / "unit.json").write_text(json.dumps(record))
    sessions = runner(
        server, tmp_path, sources=log_sources(tmp_path, {"relay": "app"}), remote_access=True
    )
    try:
        typed = frame(STDIN, b'pwd; echo "$GREETING"; stty size; exit 6\n')
        seen = await session(
            server, sessions, "shell", [typed], unit="relay", command=[], tty=True, rows=21, cols=81
        )
        lines = seen.stdout.decode().splitlines()
        assert str(workdir) in lines and "hello from relay" in lines and "21 81" in lines
        assert seen.last == {"type": "exit", "code": 6}
    finally:
        await sessions.close()
