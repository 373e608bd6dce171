"""A terminal inside a bundle container: an exec with a TTY on a hijacked engine connection.

The Docker API cannot signal an exec, and dropping the hijacked connection does not hang its
terminal up either: the engine (Podman's conmon, Docker's containerd shim) holds the PTY, so
the shell would keep running after the operator left (measured on Podman 4.3; moby/moby#9098
for Docker). So the exec's first process prints its PID before it becomes the shell, and when
the session ends the agent runs one more exec that sends SIGHUP, then SIGKILL, to every process
of that terminal's session (the shell, its jobs, their children): what a hangup does on a real
terminal, with nothing left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from signalbeam.agent.engine_attach import Attached
from signalbeam.agent.session_channel import Channel
from signalbeam.agent.session_exec import READ_BYTES, TERM_GRACE_SECONDS
from signalbeam.agent.units import UnitError
from signalbeam.protocol.sessions import STDOUT

log = logging.getLogger(__name__)

LEADER = b"signalbeam-terminal "
START_SECONDS = 15.0
POLL_SECONDS = 0.1
SIGNAL_SECONDS = 10.0
TERM = "TERM=xterm-256color"
# The exec's first process: name the terminal's session leader (itself), then become the
# command, or the image's shell (bash when it has one).
START = (
    'echo "signalbeam-terminal $$"; [ $# -gt 0 ] && exec "$@"; '
    "command -v bash >/dev/null 2>&1 && exec bash -l; exec sh -l"
)
# Signal every process whose session is $2. Only sh builtins: an image with a shell may have
# nothing else. Field 6 of /proc/PID/stat is the session; the name before it may hold spaces.
HANG_UP = (
    'sig=$1 sid=$2; for stat in /proc/[0-9]*/stat; do { read -r line < "$stat"; } 2>/dev/null '
    '|| continue; set -- ${line##*") "}; [ "$4" = "$sid" ] || continue; pid=${stat%/stat}; '
    'kill -"$sig" "${pid#/proc/}" 2>/dev/null; done; true'
)


def terminal_command(argv: list[str]) -> list[str]:
    """The exec's command line: the leader's announcement, then `argv` (or a shell)."""
    return ["sh", "-c", START, "sh", *argv]


def read_leader(line: bytes) -> int | None:
    """The session leader's PID from the exec's first line, None if it is not ours."""
    if not line.startswith(LEADER):
        return None
    number = line[len(LEADER) :].strip()
    return int(number) if number.isdigit() else None


async def container_terminal(
    channel: Channel, containers: Any, unit: str, argv: list[str], *, rows: int, cols: int
) -> int | None:
    """Run `argv` (the image's shell when empty) on a TTY in container `unit`.

    Its exit code when it ends; None when the operator left first.
    """
    ident = await containers.exec_start(unit, terminal_command(argv), tty=True, env=[TERM])
    attached = await containers.exec_attach(ident)
    leader: int | None = None
    try:
        leader = await _leader(channel, attached)
        # Before the first keystroke, so whatever the operator types sees the right size.
        await containers.exec_resize(ident, rows, cols)
        return await _drive(channel, containers, ident, attached)
    finally:
        attached.close()
        await _hang_up(containers, unit, ident, leader)


async def _leader(channel: Channel, attached: Attached) -> int | None:
    try:
        line = await asyncio.wait_for(attached.reader.readuntil(b"\n"), START_SECONDS)
    except asyncio.IncompleteReadError as err:
        line = err.partial  # the exec could not start; the engine said why
    except (asyncio.LimitOverrunError, TimeoutError):
        return None
    leader = read_leader(line)
    if leader is None:
        await channel.send(STDOUT, line)
    return leader


async def _drive(channel: Channel, containers: Any, ident: str, attached: Attached) -> int | None:
    screen = asyncio.create_task(_show(channel, attached))
    typing = asyncio.create_task(_type(channel, containers, ident, attached))
    try:
        done, _ = await asyncio.wait({screen, typing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (screen, typing):
            task.cancel()
        await asyncio.gather(screen, typing, return_exceptions=True)
    if screen in done:  # the terminal closed: its command has exited
        return await _exit_code(containers, ident)
    return None  # the operator left


async def _show(channel: Channel, attached: Attached) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await attached.reader.read(READ_BYTES):
            await channel.send(STDOUT, data)


async def _type(channel: Channel, containers: Any, ident: str, attached: Attached) -> None:
    async for item in channel.inputs():
        with contextlib.suppress(ConnectionError):
            if item.kind == "stdin":
                await attached.write(item.data)
            elif item.kind == "resize":
                await containers.exec_resize(ident, item.rows, item.cols)
            elif item.kind == "eof":
                await attached.write(b"\x04")


async def _exit_code(containers: Any, ident: str) -> int:
    # The engine may close the stream a moment before it records the exit.
    await _until_ended(containers, ident)
    return int(await containers.exec_code(ident))


async def _until_ended(containers: Any, ident: str) -> None:
    deadline = asyncio.get_running_loop().time() + TERM_GRACE_SECONDS
    while await containers.exec_running(ident):
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(POLL_SECONDS)


async def _hang_up(containers: Any, unit: str, ident: str, leader: int | None) -> None:
    if leader is None:
        log.warning("terminal in %s: no session leader announced; cannot end its processes", unit)
        return
    if await containers.exec_running(ident):
        await _signal(containers, unit, "HUP", leader)
        await _until_ended(containers, ident)
    # Whatever ignored the hangup, or was left in the background when the shell exited.
    await _signal(containers, unit, "KILL", leader)


async def _signal(containers: Any, unit: str, sig: str, leader: int) -> None:
    with contextlib.suppress(UnitError):  # the container is gone, and its processes with it
        await containers.exec(unit, ["sh", "-c", HANG_UP, "sh", sig, str(leader)], SIGNAL_SECONDS)
