"""Logs sessions: the units a device can show, app and agent log files, grep, follow, journal."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signalbeam.agent.session_runner import SessionRunner
from tests.agent.relay_support import (
    Relay,
    log_sources,
    opened,
    read_until,
    relay,
    runner,
    session,
    until,
)
from tests.components import need

UNITS = {"web": "container", "relay": "app"}


@pytest.fixture
async def server() -> AsyncIterator[Relay]:
    async with relay() as running:
        yield running


@pytest.fixture
async def sessions(server: Relay, tmp_path: Path) -> AsyncIterator[SessionRunner]:
    sources = log_sources(tmp_path, UNITS, host_units=["nginx.service"])
    started = runner(server, tmp_path, sources=sources)
    yield started
    await started.close()


def app_log(tmp_path: Path) -> Path:
    """Where the app driver writes the relay app's output."""
    path = tmp_path / "units" / "relay" / "logs" / "output.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


async def test_without_a_unit_the_device_lists_what_it_can_show(
    server: Relay, sessions: SessionRunner
) -> None:
    seen = await session(server, sessions, "logs")
    assert seen.stdout.decode().splitlines() == ["relay", "web", "agent", "nginx.service"]
    assert seen.last == {"type": "exit", "code": 0}


async def test_an_unknown_unit_names_the_units_there_are(
    server: Relay, sessions: SessionRunner
) -> None:
    seen = await session(server, sessions, "logs", unit="x")
    assert seen.last == {
        "type": "error",
        "detail": "refused by the device: no unit 'x' on this device; "
        "units: relay, web, agent, nginx.service",
    }


async def test_an_app_log_tail_reaches_into_the_rotated_file_and_greps(
    server: Relay, sessions: SessionRunner, tmp_path: Path
) -> None:
    path = app_log(tmp_path)
    path.with_name("output.log.1").write_text("old 1\nold 2 error\n")
    path.write_text("new 1\nnew 2 error\nnew 3\n")
    tail = await session(server, sessions, "logs", unit="relay", tail=4)
    assert tail.stdout == b"old 2 error\nnew 1\nnew 2 error\nnew 3\n"
    assert tail.last == {"type": "exit", "code": 0}
    errors = await session(server, sessions, "logs", unit="relay", tail=10, grep="err(or)?$")
    assert errors.stdout == b"old 2 error\nnew 2 error\n"


async def test_a_bad_filter_is_named(server: Relay, sessions: SessionRunner) -> None:
    seen = await session(server, sessions, "logs", unit="agent", grep="([")
    assert seen.last["type"] == "error"
    assert seen.last["detail"].startswith(
        "refused by the device: the filter '([' is not a valid regular expression"
    )


async def test_follow_sends_new_lines_until_the_operator_leaves(
    server: Relay, sessions: SessionRunner, tmp_path: Path
) -> None:
    path = app_log(tmp_path)
    path.write_text("before\n")
    ws = await opened(server, sessions, "logs", unit="relay", tail=10, follow=True, grep="keep")
    append(path, "drop this\nkeep 1\n")
    assert await read_until(ws, b"keep 1\n") == b"keep 1\n"
    append(path, "kee")  # half a line: held until its end arrives
    append(path, "p 2\n")
    assert await read_until(ws, b"\n") == b"keep 2\n"
    await ws.close()
    await until(lambda: not sessions.running, "the followed session to end")


async def test_the_agent_log_is_the_rotated_file_in_the_state_dir(
    server: Relay, sessions: SessionRunner, tmp_path: Path
) -> None:
    (tmp_path / "agent.log").write_text("a\nb\nsignalbeam-agent starting\n")
    seen = await session(server, sessions, "logs", unit="agent", tail=2)
    assert seen.stdout == b"b\nsignalbeam-agent starting\n"


async def test_a_host_unit_the_owner_allowed_is_read_with_journalctl(
    server: Relay, sessions: SessionRunner
) -> None:
    need(shutil.which("journalctl") is not None, "journalctl is not installed here")
    seen = await session(server, sessions, "logs", unit="nginx.service", tail=5)
    # No journal in a test sandbox: journalctl says so, and the session still ends.
    assert seen.last["type"] == "exit"


async def test_without_journalctl_a_host_unit_says_so(
    server: Relay, sessions: SessionRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    seen = await session(server, sessions, "logs", unit="nginx.service")
    assert seen.last == {
        "type": "error",
        "detail": "refused by the device: journalctl is not installed on this device",
    }
