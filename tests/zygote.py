"""Server processes forked from one that has already imported SignalBeam (a zygote).

Each `signalbeam server` a test starts spends about 1.5 s of CPU importing FastAPI,
SQLAlchemy, Alembic and our own modules before it does anything; the suite starts hundreds,
on two cores. A zygote per test worker imports all of that once and forks a child per
server. The child is still a separate, real server process: it runs the `signalbeam` command
line with the test's arguments, environment and working directory, writes to the test's pipe,
listens on its own port and dies by its own signals. Only the interpreter start-up is shared.

`python -m tests.zygote SOCKET` runs the zygote. A request on SOCKET is one JSON line
`{"args": [...], "env": {...}, "cwd": "..."}` with the write end of the output pipe passed
alongside (SCM_RIGHTS). The answer is `pid N` at once and `exit CODE` when the child ends
(CODE as `subprocess.Popen.returncode`: minus the signal number if it was killed). A client
that hangs up takes its child with it, as no server must outlive its test.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import IO, Any

# What `signalbeam server` imports on its way up, loaded once in the zygote.
WARM = (
    "signalbeam.cli.main",
    "signalbeam.server.main",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
)
MAX_REQUEST = 1 << 20


# --- the zygote -------------------------------------------------------------------------------


def _become(request: dict[str, Any], stdio: list[int]) -> None:
    """In the forked child: run the command line as `python -m signalbeam` would, then exit.

    Signal handlers are Python's own (the zygote sets none): SIGINT is KeyboardInterrupt,
    SIGTERM kills, SIGPIPE is ignored, as in any new interpreter.
    """
    code = 1
    try:
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for fd in set(stdio):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from signalbeam.cli.main import run

        sys.argv = ["signalbeam", *request["args"]]
        code = run(request["args"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


class Zygote:
    """Accepts requests, forks a server per request and reports each one's exit."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.children: dict[int, tuple[socket.socket, int]] = {}  # pidfd -> (client, pid)

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select():
                key.data(key.fileobj)

    def _accept(self, _: object) -> None:
        client, _ = self.listener.accept()
        fds = array.array("i")
        message, ancillary, _, _ = client.recvmsg(MAX_REQUEST, socket.CMSG_LEN(3 * fds.itemsize))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            client.close()
            return
        pid = os.fork()
        if pid == 0:
            self.listener.close()
            for pidfd, (other, _) in self.children.items():
                other.close()
                os.close(pidfd)
            client.close()
            _become(json.loads(message), list(fds))
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (client, pid)
        self.selector.register(pidfd, selectors.EVENT_READ, self._reap)
        self.selector.register(client, selectors.EVENT_READ, self._hung_up)
        client.sendall(f"pid {pid}\n".encode())

    def _reap(self, pidfd: object) -> None:
        assert isinstance(pidfd, int)
        client, pid = self.children.pop(pidfd)
        _, status = os.waitpid(pid, 0)
        self.selector.unregister(pidfd)
        with contextlib.suppress(KeyError):  # unregistered already if the client hung up
            self.selector.unregister(client)
        os.close(pidfd)
        with contextlib.suppress(OSError):
            client.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
        client.close()

    def _hung_up(self, client: object) -> None:
        # Clients send nothing after the request: readable means gone.
        for held, pid in self.children.values():
            if held is client:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self.selector.unregister(held)
                return


def serve(path: str) -> None:
    import importlib

    for module in WARM:
        importlib.import_module(module)
    # Tell whoever started us that the imports are done (the socket exists from here on).
    zygote = Zygote(path)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    zygote.serve()


# --- the client, in the test worker -----------------------------------------------------------


class ForkedProcess:
    """A child of the zygote, with the parts of `subprocess.Popen` the tests use."""

    def __init__(
        self,
        zygote: str,
        args: list[str],
        env: dict[str, str],
        cwd: str,
        *,
        pipe_stdin: bool = False,
        pipe_stderr: bool = False,
    ) -> None:
        """Start `signalbeam ARGS`; stdout is a pipe, stderr joins it unless `pipe_stderr`."""
        self.args = args
        self.returncode: int | None = None
        theirs: list[int] = []
        ours: list[int] = []
        try:
            child_in = os.open(os.devnull, os.O_RDONLY)
            if pipe_stdin:
                os.close(child_in)
                child_in, stdin = os.pipe()
                ours.append(stdin)
            out, child_out = os.pipe()
            ours.append(out)
            theirs += [child_in, child_out]
            child_err = child_out
            if pipe_stderr:
                err, child_err = os.pipe()
                ours.append(err)
                theirs.append(child_err)
            self.link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.link.connect(zygote)
            request = json.dumps({"args": args, "env": env, "cwd": cwd}).encode()
            fds = array.array("i", [child_in, child_out, child_err])
            self.link.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self.stdin: IO[str] | None = open(stdin, "w") if pipe_stdin else None  # noqa: SIM115
        self.stdout: IO[str] | None = open(out, errors="replace")  # noqa: SIM115
        self.stderr: IO[str] | None = open(err, errors="replace") if pipe_stderr else None  # noqa: SIM115
        self.buffer = b""
        first = self._line(None).split()
        if first[:1] != ["pid"]:
            raise OSError(f"the test zygote refused to start {args}")
        self.pid = int(first[1])

    def communicate(self, input: str = "", timeout: float | None = None) -> tuple[str, str]:
        """As `Popen.communicate`: feed stdin, read both outputs to the end, wait for the exit."""
        read: dict[int, str] = {}

        def drain(index: int, stream: IO[str] | None) -> None:
            if stream is not None:
                with stream:
                    read[index] = stream.read()

        readers = [
            threading.Thread(target=drain, args=(i, s), daemon=True)
            for i, s in enumerate((self.stdout, self.stderr))
        ]
        for reader in readers:
            reader.start()
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.stdin.write(input)
            with contextlib.suppress(BrokenPipeError):
                self.stdin.close()
        self.wait(timeout)
        for reader in readers:
            reader.join(timeout)
        return read.get(0, ""), read.get(1, "")

    def _line(self, timeout: float | None) -> str:
        """The zygote's next answer line; "" if it is gone, TimeoutError if none in time."""
        while b"\n" not in self.buffer:
            if not select.select([self.link], [], [], timeout)[0]:
                raise TimeoutError
            chunk = self.link.recv(4096)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(TimeoutError):
                self._exit(self._line(0))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self._exit(self._line(timeout))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def _exit(self, line: str) -> None:
        # The zygote itself gone reads as a crash of the child: kill it to be sure.
        if not line.startswith("exit "):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.returncode = -signal.SIGKILL
        else:
            self.returncode = int(line.split()[1])
        self.link.close()

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_started: dict[str, str] = {}
_lock = threading.Lock()


def zygote_socket() -> str | None:
    """This worker's zygote (started on first use), or None where forking servers cannot work."""
    if not hasattr(os, "pidfd_open") or os.environ.get("SIGNALBEAM_TEST_NO_ZYGOTE"):
        return None
    with _lock:
        if "path" not in _started:
            _started["path"] = _start()
        return _started["path"]


def _start() -> str:
    path = str(Path(tempfile.mkdtemp(prefix="sb-zygote-")) / "socket")
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.zygote", path],
        # Not the worker's stdin: xdist talks to its workers over it.
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise AssertionError("the test zygote did not start")

    def stop() -> None:
        process.kill()
        process.wait()

    atexit.register(stop)
    return path


if __name__ == "__main__":
    serve(sys.argv[1])
