"""A native app's process: started in its own session, waited for, adopted, signalled."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from signalbeam.agent.app_output import CHUNK_BYTES, Tail
from signalbeam.agent.app_record import AppRecord
from signalbeam.agent.units import UnitError

MINIMAL_ENV = ("PATH", "HOME", "LANG")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
PIPE_BYTES = 1 << 20
TIMED_OUT = 124

# Children handed over by `close()`: kept referenced (so Popen never warns that they still run)
# and reaped once they exit, as `subprocess` does for its own orphans.
_DISOWNED: list[subprocess.Popen[bytes]] = []


def app_env(extra: dict[str, str]) -> dict[str, str]:
    """The agent's PATH, HOME and LANG, plus the spec's own variables (which win)."""
    env = {key: os.environ[key] for key in MINIMAL_ENV if key in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return {**env, **extra}


def resolve(argv: list[str], workdir: Path) -> list[str]:
    """`./relay` means the relay inside the app's directory; bare names go through PATH."""
    first = argv[0]
    if "/" in first and not os.path.isabs(first):
        first = str(workdir / first)
    return [first, *argv[1:]]


def process_start_time(pid: int) -> int | None:
    """When a live process started (clock ticks after boot); None when gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, *rest = text[text.rindex(")") + 2 :].split()
    return None if state in ("Z", "X") else int(rest[18])


def exit_status(returncode: int) -> int:
    """A shell-style exit status: 128 + the signal number for a process killed by a signal."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int | None, last_line: str) -> str:
    """How a process ended, with the last line it wrote: `exited with code 3: <line>`."""
    if returncode is None:
        text = "exited (exit code unknown: it was started before the agent restarted)"
    elif returncode < 0:
        text = f"killed by {signal.Signals(-returncode).name}"
    else:
        text = f"exited with code {returncode}"
    return f"{text}: {last_line}" if last_line else text


def _reap_disowned() -> None:
    _DISOWNED[:] = [child for child in _DISOWNED if child.poll() is None]


def disown(child: subprocess.Popen[bytes]) -> None:
    """Stop waiting for `child` (it keeps running); it is reaped once it exits."""
    _DISOWNED.append(child)


async def _child_exit(child: subprocess.Popen[bytes], poll: float) -> int:
    """Wait for our child to end without a thread: its pidfd becomes readable when it exits."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except OSError:  # already reaped, or a kernel without pidfd: fall back to polling
        while child.poll() is None:  # noqa: ASYNC110 - nothing else tells us
            await asyncio.sleep(poll)
        return child.returncode
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return child.wait()


@dataclass
class Process:
    """A running app process: our child, or adopted from an earlier agent (`child` is None)."""

    pid: int
    start_time: int | None
    child: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        """True while it runs; an adopted pid counts only with the start time it had."""
        if self.child is not None:
            return self.child.poll() is None
        _reap_disowned()
        return self.start_time is not None and process_start_time(self.pid) == self.start_time

    async def exited(self, poll: float) -> int | None:
        """Wait for the end: the Popen return code, or None for an adopted process."""
        if self.child is not None:
            return await _child_exit(self.child, poll)
        # Only our own children can be waited for; /proc is how we learn of anyone else's end.
        while self.alive():  # noqa: ASYNC110 - no event exists for it
            await asyncio.sleep(poll)
        return None

    def kill(self, sig: signal.Signals) -> None:
        """Signal the process itself (not its helpers), as an engine signals a container."""
        if self.alive():  # never signal a pid that now belongs to someone else
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal its whole process group (it leads its own session)."""
        if self.alive():  # never signal a pid that now belongs to someone else
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)


def spawn(record: AppRecord, workdir: Path, fifo: Path) -> Process:
    """Start the app in a new session, stdout and stderr into `fifo` (which we must be reading)."""
    _reap_disowned()
    write_fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    keep_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    argv = resolve(record.command, workdir)
    try:
        os.set_blocking(write_fd, True)
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        child = subprocess.Popen(  # noqa: S603 - the operator's own command, no shell
            argv,
            cwd=workdir,
            env=app_env(record.env),
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
            pass_fds=(keep_fd,),  # a read end the app holds: see the module docstring
        )
    except OSError as err:
        raise UnitError(
            f"cannot start app {record.name}: {record.command[0]}: {err.strerror or err}"
        ) from err
    finally:
        os.close(write_fd)
        os.close(keep_fd)
    started = process_start_time(child.pid)
    return Process(child.pid, started, child)


async def run_command(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str]:
    """Run `argv` to completion within `timeout`: exit status and the tail of its output."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as err:
        code = 127 if isinstance(err, FileNotFoundError) else 126
        return code, f"{argv[0]}: {err.strerror or err}"
    tail = Tail()

    async def finish() -> int:
        assert process.stdout is not None
        while chunk := await process.stdout.read(CHUNK_BYTES):
            tail.add(chunk)
        return await process.wait()

    try:
        return exit_status(await asyncio.wait_for(finish(), timeout)), tail.text()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return TIMED_OUT, f"{tail.text()}\ntimed out after {timeout:g}s and was killed"
