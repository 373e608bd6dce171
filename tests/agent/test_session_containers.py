"""Logs and exec sessions in a bundle container, through a real Podman (Docker Engine API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from signalbeam.agent.containers import ContainerDriver
from signalbeam.agent.session_logs import LogRequest
from signalbeam.agent.session_runner import SessionRunner
from signalbeam.agent.spec import ContainerSpec, parse_unit, unit_fingerprint
from signalbeam.protocol.sessions import STDERR, STDOUT
from tests.agent.relay_support import Relay, log_sources, opened, read_until, relay, runner, session
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


@pytest.fixture
async def sessions(
    driver: ContainerDriver, tmp_path: Path
) -> AsyncIterator[tuple[Relay, SessionRunner]]:
    def follow(name: str, asked: LogRequest) -> AsyncIterator[bytes]:
        return driver.follow_logs(name, asked.tail, asked.since_seconds, asked.follow)

    sources = log_sources(tmp_path, {"web": "container"}, container_logs=follow)
    async with relay() as server:
        started = runner(
            server,
            tmp_path,
            sources=sources,
            units=SimpleNamespace(containers=driver),
            remote_access=True,
        )
        yield server, started
        await started.close()


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
