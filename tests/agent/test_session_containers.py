"""Logs and exec sessions in a bundle container, through a real Podman (Docker Engine API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from signalbeam.agent.containers import ContainerDriver
from signalbeam.agent.engine_api import EngineError
from signalbeam.agent.engine_attach import attach
from signalbeam.agent.session_logs import LogRequest
from signalbeam.agent.session_runner import SessionRunner
from signalbeam.agent.spec import ContainerSpec, parse_unit, unit_fingerprint
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
)
from tests.agent.test_containers import eventually
from tests.engine import Engine, engine

__all__ = ["engine"]
SCRIPT = "echo line 1; echo oops 2 >&2; echo line 3; sleep 600"


@pytest.fixture
async def driver(engine: Engine, request: pytest.FixtureRequest) -> AsyncIterator[ContainerDriver]:
    owner = f"test-{request.node.name[:30]}"
    engine.remove_owned(owner)
    started = ContainerDriver(owner, engine.socket)
    spec = parse_unit(
        {"name": "web", "image": engine.image("sb/web", "1.0.0"), "command": ["sh", "-c", SCRIPT]},
        ContainerSpec,
    )
    await started.prepare(spec)
    await started.start(spec, unit_fingerprint(spec), "site@1.0.0")
    yield started
    await started.close()
    engine.remove_owned(owner)


def container_runner(
    server: Relay, driver: ContainerDriver, tmp_path: Path, **settings: Any
) -> SessionRunner:
    """A runner whose device has the bundle container `web`."""

    def follow(name: str, asked: LogRequest) -> AsyncIterator[bytes]:
        return driver.follow_logs(name, asked.tail, asked.since_seconds, asked.follow)

    sources = log_sources(tmp_path, {"web": "container"}, container_logs=follow)
    units = SimpleNamespace(containers=driver)
    return runner(server, tmp_path, sources=sources, units=units, remote_access=True, **settings)


@pytest.fixture
async def sessions(
    driver: ContainerDriver, tmp_path: Path
) -> AsyncIterator[tuple[Relay, SessionRunner]]:
    async with relay() as server:
        started = container_runner(server, driver, tmp_path)
        yield server, started
        await started.close()


async def processes(driver: ContainerDriver) -> str:
    """`ps` in the container, through the engine."""
    code, output = await driver.exec("web", ["ps"], 10)
    assert code == 0, output
    return output


async def test_container_logs_tail_grep_and_follow(
    driver: ContainerDriver, sessions: tuple[Relay, SessionRunner]
) -> None:
    server, runs = sessions

    async def wrote() -> bool:
        return "line 3" in await driver.logs("web")

    await eventually(wrote, "the container's output")
    seen = await session(server, runs, "logs", unit="web", tail=10)
    # stdout and stderr both, headers stripped (the engine keeps the order within a stream).
    assert sorted(seen.stdout.decode().splitlines()) == ["line 1", "line 3", "oops 2"]
    assert seen.last == {"type": "exit", "code": 0}
    only = await session(server, runs, "logs", unit="web", tail=10, grep="line")
    assert only.stdout == b"line 1\nline 3\n"
    ws = await opened(server, runs, "logs", unit="web", tail=0, follow=True)
    late = ["sh", "-c", "echo late line > /proc/1/fd/1"]  # the container's own stdout
    assert (await session(server, runs, "exec", unit="web", command=late)).last["code"] == 0
    assert await read_until(ws, b"late line\n") == b"late line\n"
    await ws.close()


async def test_container_exec_streams_both_streams_and_the_exit_code(
    sessions: tuple[Relay, SessionRunner],
) -> None:
    server, runs = sessions
    script = "echo hi; echo oops >&2; exit 4"
    seen = await session(server, runs, "exec", unit="web", command=["sh", "-c", script])
    assert (STDOUT, b"hi\n") in seen.output and (STDERR, b"oops\n") in seen.output
    assert seen.last == {"type": "exit", "code": 4}
    slow = await session(
        server, runs, "exec", unit="web", command=["sleep", "600"], timeout_seconds=0.5
    )
    assert slow.last == {"type": "exit", "code": 124}
    assert b"timed out after 0.5s" in slow.stderr


async def test_a_terminal_in_a_container_sizes_resizes_and_exits_with_its_code(
    driver: ContainerDriver, sessions: tuple[Relay, SessionRunner]
) -> None:
    server, runs = sessions
    ws = await opened(server, runs, "shell", unit="web", command=[], tty=True, rows=20, cols=70)
    await ws.send(frame(STDIN, b"stty size; echo $((6*7))\n"))
    first = await read_until(ws, b"42\r\n")
    assert b"20 70\r\n42\r\n" in first  # the typed line echoes "$((6*7))", never 42
    await ws.send(control("resize", rows=33, cols=111))
    await ws.send(frame(STDIN, b"stty size; exit 3\n"))
    seen = await asyncio.wait_for(read_all(ws), BOUND)
    assert b"33 111\r\n" in seen.stdout
    assert {stream for stream, _ in seen.output} == {STDOUT}  # a terminal has one stream
    assert b"signalbeam-terminal" not in first + seen.stdout  # the leader's line is ours
    assert seen.last == {"type": "exit", "code": 3}
    assert "sh -l" not in await processes(driver)


async def test_a_terminal_the_operator_leaves_leaves_no_process_in_the_container(
    driver: ContainerDriver, sessions: tuple[Relay, SessionRunner]
) -> None:
    server, runs = sessions
    ws = await opened(server, runs, "shell", unit="web", command=[], tty=True)
    # A background job and a foreground one: a hangup has to reach both.
    await ws.send(frame(STDIN, b"sleep 1234 & sleep 777\n"))

    async def running() -> str | None:
        found = await processes(driver)
        return found if "sleep 777" in found and "sleep 1234" in found else None

    await eventually(running, "the shell's two sleeps in the container")
    await ws.close()

    async def gone() -> bool:
        found = await processes(driver)
        return not any(name in found for name in ("sleep 777", "sleep 1234", "sh -l"))

    await eventually(gone, "the terminal's processes to end")
    assert "sleep 600" in await processes(driver)  # the container's own process is untouched
    await until_idle(runs)


async def test_an_idle_terminal_in_a_container_ends_with_its_processes(
    driver: ContainerDriver, tmp_path: Path
) -> None:
    async with relay() as server:
        runs = container_runner(server, driver, tmp_path, session_idle_timeout=1.0)
        try:
            ws = await opened(server, runs, "shell", unit="web", command=[], tty=True)
            await ws.send(frame(STDIN, b"sleep 999\n"))
            seen = await asyncio.wait_for(read_all(ws), BOUND)
            assert seen.controls == [{"type": "error", "detail": "idle for 1 s; session ended"}]
            assert "sleep 999" not in await processes(driver)
        finally:
            await runs.close()


async def test_a_terminal_the_engine_refuses_says_what_the_engine_said(
    driver: ContainerDriver,
) -> None:
    with pytest.raises(EngineError) as refused:
        await attach(driver.address, "/exec/no-such-exec/start", {"Detach": False, "Tty": True})
    assert refused.value.status == 404
    assert "no-such-exec" in refused.value.message or "no such" in refused.value.message.lower()


async def until_idle(runs: SessionRunner) -> None:
    """Wait until the runner has finished every session (its clean-up included)."""

    async def idle() -> bool:
        return runs.running == 0

    await eventually(idle, "the session to finish")
