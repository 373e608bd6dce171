"""Exec and shell sessions: a command on the host (or a terminal), streamed both ways.

Each command runs in a session and process group of its own, so ending the session (the
operator left, the link dropped, the timeout passed) ends everything it started, children
included: nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pwd
import signal
import struct
import termios
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signalbeam.agent.session_channel import Channel, Input, SessionRefused
from signalbeam.protocol.sessions import STDERR, STDOUT

EXIT_TIMEOUT = 124
EXIT_NOT_FOUND = 127
TERM_GRACE_SECONDS = 2.0
READ_BYTES = 64 * 1024


async def run_command(
    channel: Channel,
    argv: list[str],
    *,
    timeout: float | None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> int:
    """Run `argv` with stdout, stderr and stdin streamed; its exit code."""
    try:
        process, exited = await _spawn(
            argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            **_as_user(user),
        )
    except FileNotFoundError:
        await channel.send(STDERR, f"command not found: {argv[0]}\n".encode())
        return EXIT_NOT_FOUND
    except PermissionError as err:
        raise SessionRefused(f"cannot run {argv[0]} on the device: {err.strerror}") from err
    try:
        return await _supervise(channel, process, exited, timeout)
    finally:
        await _reap(process.pid, exited)


class _Watched(asyncio.subprocess.SubprocessStreamProtocol):
    """A command's pipes that also tell when the command itself exits.

    Python 3.11's Process.wait() waits for the pipes to close as well, so a helper left
    running (`sh -c 'sleep 1000 &'`) would hold the session open as long as it lives.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=READ_BYTES, loop=loop)
        self.exit_code: asyncio.Future[int] = loop.create_future()
        self._process: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._process = transport
        super().connection_made(transport)

    def process_exited(self) -> None:
        code = self._process.get_returncode() if self._process is not None else None
        if code is not None and not self.exit_code.done():
            self.exit_code.set_result(code)
        super().process_exited()


async def _spawn(
    argv: list[str], **options: Any
) -> tuple[asyncio.subprocess.Process, asyncio.Future[int]]:
    loop = asyncio.get_running_loop()
    transport, watched = await loop.subprocess_exec(lambda: _Watched(loop), *argv, **options)
    return asyncio.subprocess.Process(transport, watched, loop), watched.exit_code


async def _supervise(
    channel: Channel,
    process: asyncio.subprocess.Process,
    exited: asyncio.Future[int],
    timeout: float | None,
) -> int:
    assert process.stdout is not None and process.stderr is not None
    pumps = [
        asyncio.create_task(_pump(process.stdout, channel, STDOUT)),
        asyncio.create_task(_pump(process.stderr, channel, STDERR)),
    ]
    feeding = asyncio.create_task(_feed(channel, process))
    try:
        code = await asyncio.wait_for(asyncio.shield(exited), timeout)
    except TimeoutError:
        await _terminate(process.pid, exited)
        await _drain(pumps)
        await channel.send(STDERR, f"\nsignalbeam: timed out after {timeout:g}s\n".encode())
        return EXIT_TIMEOUT
    finally:
        feeding.cancel()
    # The command is done, so is the session: helpers it left in its group go too, and what
    # they all wrote before is still read, up to the end of the pipes.
    kill_group(process.pid)
    await _drain(pumps)
    return code if code >= 0 else 128 - code


async def _drain(pumps: list[asyncio.Task[None]]) -> None:
    # Bounded: a helper that left the group (setsid) may hold a pipe open for ever.
    _, pending = await asyncio.wait(pumps, timeout=TERM_GRACE_SECONDS)
    for pump in pending:
        pump.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(reader: asyncio.StreamReader, channel: Channel, stream: int) -> None:
    while data := await reader.read(READ_BYTES):
        await channel.send(stream, data)


async def _feed(channel: Channel, process: asyncio.subprocess.Process) -> None:
    stdin = process.stdin
    assert stdin is not None
    async for item in channel.inputs():
        if item.kind == "stdin":
            with contextlib.suppress(ConnectionError):
                stdin.write(item.data)
                await stdin.drain()
        elif item.kind == "eof":
            stdin.close()
    # The operator went away: the session is over, and so is the command.
    kill_group(process.pid)


async def _terminate(pgid: int, exited: asyncio.Future[int]) -> None:
    signal_group(pgid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(exited), TERM_GRACE_SECONDS)
    except TimeoutError:
        kill_group(pgid)
        await exited


async def _reap(pgid: int, exited: asyncio.Future[int]) -> None:
    # Also when the session is cancelled or its link failed: the command is killed and waited
    # for, so neither a zombie nor a transport that still thinks it runs outlives the session.
    kill_group(pgid)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), TERM_GRACE_SECONDS)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a whole process group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_group(pgid: int) -> None:
    """End a session's process group and everything in it."""
    signal_group(pgid, signal.SIGKILL)


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop to `user` (only an agent running as root can)."""
    if user is None or os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError as err:
        raise SessionRefused(
            f"session_user {user!r} in the agent config does not exist on this device"
        ) from err
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def login_shell(user: str | None) -> list[str]:
    """The shell a terminal session starts when no command is given."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
        if entry.pw_shell and Path(entry.pw_shell).exists():
            return [entry.pw_shell, "-l"]
    return ["/bin/sh", "-l"]


async def run_terminal(
    channel: Channel,
    argv: list[str],
    *,
    rows: int,
    cols: int,
    user: str | None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run `argv` on a real PTY: keystrokes in, the screen out, resizes passed on.

    In `cwd` with `env` when given (an app's), else where the agent runs with its environment.
    """
    master, slave = os.openpty()
    _resize(master, rows, cols)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=_take_terminal,
            cwd=cwd,
            env={**(os.environ if env is None else env), "TERM": "xterm-256color"},
            **_as_user(user),
        )
    except FileNotFoundError as err:
        os.close(master)
        raise SessionRefused(f"no shell {argv[0]} on this device") from err
    finally:
        os.close(slave)
    try:
        return await _drive_terminal(channel, process, master)
    finally:
        kill_group(process.pid)
        os.close(master)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), TERM_GRACE_SECONDS)


def _take_terminal() -> None:
    # In the child, before exec: a new session whose controlling terminal is the PTY.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _drive_terminal(
    channel: Channel, process: asyncio.subprocess.Process, master: int
) -> int:
    os.set_blocking(master, False)
    reading = asyncio.create_task(_read_terminal(channel, master))
    typing = asyncio.create_task(_type(channel, master, process))
    code = await process.wait()
    typing.cancel()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reading, TERM_GRACE_SECONDS)
    reading.cancel()
    return code if code >= 0 else 128 - code


async def _read_terminal(channel: Channel, master: int) -> None:
    loop = asyncio.get_running_loop()
    while True:
        ready = loop.create_future()
        loop.add_reader(master, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(master)
        try:
            data = os.read(master, READ_BYTES)
        except BlockingIOError:
            continue
        except OSError:  # EIO: the last process holding the terminal has gone
            return
        if not data:
            return
        await channel.send(STDOUT, data)


async def _type(channel: Channel, master: int, process: asyncio.subprocess.Process) -> None:
    async for item in channel.inputs():
        _on_input(master, item)
    kill_group(process.pid)


def _on_input(master: int, item: Input) -> None:
    if item.kind == "stdin":
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(master, item.data)
    elif item.kind == "resize":
        _resize(master, item.rows, item.cols)
    elif item.kind == "eof":
        with contextlib.suppress(OSError):
            os.write(master, b"\x04")


def _resize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
