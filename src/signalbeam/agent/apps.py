"""Native apps: artifacts unpacked per version, run as supervised processes that outlive the agent.

Layout under `root`: `units/<name>/<sha256>/` (one unpacked version each), `units/<name>/unit.json`
(what runs, so a restarted agent adopts it), `units/<name>/output.pipe` (a FIFO carrying the
app's stdout and stderr) and `units/<name>/logs/output.log` (rotated). The FIFO, unlike an
anonymous pipe, can be opened again by the next agent, and the app holds a read end of it
itself, so an agent restart never breaks its pipe (no SIGPIPE): output waits in the pipe
buffer (1 MiB) until the new agent reads it, and an app that writes more than that while no
agent runs blocks on its write instead of dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from signalbeam.agent.artifacts import ArtifactCache, ControlPlane, unpack
from signalbeam.agent.spec import AppSpec
from signalbeam.agent.units import RestartPolicy, UnitError, UnitState, UnitStatus

log = logging.getLogger(__name__)
RECORD = "unit.json"
PIPE = "output.pipe"
LOG_FILE = "output.log"
MINIMAL_ENV = ("PATH", "HOME", "LANG")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
CHUNK_BYTES = 1 << 16
PIPE_BYTES = 1 << 20
TAIL_BYTES = 4096
DRAIN_SECONDS = 2.0
STOP_POLL_SECONDS = 0.05
TIMED_OUT = 124

# Children handed over by `close()`: kept referenced (so Popen never warns that they still run)
# and reaped once they exit, as `subprocess` does for its own orphans.
_DISOWNED: list[subprocess.Popen[bytes]] = []


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class AppSettings:
    """How the driver supervises: restarts, stop grace, polling, log rotation."""

    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_timeout: float = 10.0
    poll_interval: float = 1.0
    log_max_bytes: int = 1 << 20
    log_backups: int = 3


@dataclass
class AppRecord:
    """What runs for one app, kept in `unit.json` so that a restarted agent adopts it."""

    name: str
    owner: str
    fingerprint: str
    bundle: str
    sha256: str
    command: list[str]
    env: dict[str, str]
    state: UnitState = UnitState.STARTING
    pid: int | None = None
    start_time: int | None = None  # clock ticks after boot, from /proc/<pid>/stat
    since: datetime = field(default_factory=now)
    restart_count: int = 0
    exit_code: int | None = None
    last_error: str | None = None

    def dumps(self) -> str:
        """The record as JSON."""
        return json.dumps({**asdict(self), "since": self.since.isoformat()}, indent=2)

    @classmethod
    def loads(cls, text: str) -> AppRecord:
        """Parse `dumps` output; raises ValueError, KeyError or TypeError when damaged."""
        data: dict[str, Any] = json.loads(text)
        data["since"] = datetime.fromisoformat(data["since"])
        data["state"] = UnitState(data["state"])
        # Keys a newer agent added are left out rather than making the record unreadable.
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class RotatingLog:
    """Appends to `path`, renaming it to `.1` (and `.1` to `.2`...) when it would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: io.FileIO | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append `data`; output that cannot be written (a full disk) is dropped, not fatal."""
        try:
            if self._file is not None and self._size + len(data) > self.max_bytes:
                self._rotate()
            file = self._file or self._open()
            file.write(data)
            self._size += len(data)
        except OSError as err:
            log.warning("cannot write %s: %s; output dropped", self.path, err)

    def close(self) -> None:
        """Close the current file; the next write opens it again."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> io.FileIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = file = self.path.open("ab", buffering=0)
        self._size = file.tell()
        return file

    def _rotate(self) -> None:
        self.close()
        for index in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else self.path
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index}"))


class Tail:
    """The last few KiB a process wrote, for `exited with code 3: <last line>`."""

    def __init__(self) -> None:
        self.data = b""

    def add(self, chunk: bytes) -> None:
        """Remember `chunk`, forgetting all but the last `TAIL_BYTES`."""
        self.data = (self.data + chunk)[-TAIL_BYTES:]

    def text(self) -> str:
        """What was kept, decoded."""
        return self.data.decode(errors="replace")

    def last_line(self) -> str:
        """The last non-blank line, trimmed to 200 characters."""
        lines = [line.strip() for line in self.text().splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""


def read_log_tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a rotated log, reaching into `.1` when the current is short."""
    found: list[str] = []
    for candidate in (path, path.with_name(f"{path.name}.1")):
        with contextlib.suppress(FileNotFoundError), candidate.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - max(CHUNK_BYTES, lines * 512)))
            found = file.read().decode(errors="replace").splitlines()[-lines:] + found
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])


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


def _describe_exit(returncode: int | None, last_line: str) -> str:
    if returncode is None:
        text = "exited (exit code unknown: it was started before the agent restarted)"
    elif returncode < 0:
        text = f"killed by {signal.Signals(-returncode).name}"
    else:
        text = f"exited with code {returncode}"
    return f"{text}: {last_line}" if last_line else text


def _reap_disowned() -> None:
    _DISOWNED[:] = [child for child in _DISOWNED if child.poll() is None]


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

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal its whole process group (it leads its own session)."""
        if self.alive():  # never signal a pid that now belongs to someone else
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)


def _open_fifo(path: Path) -> int:
    """Our read end of the unit's FIFO (created when missing), non-blocking."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISFIFO(path.lstat().st_mode):
            path.unlink()
    with contextlib.suppress(FileExistsError):
        os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


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


async def pump(read_fd: int, output: RotatingLog, tail: Tail) -> None:
    """Copy the FIFO into the rotating log until every writer has closed it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK_BYTES)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        # Each chunk is at most 64 KiB, so the append is brief enough to do inline.
        while chunk := await reader.read(CHUNK_BYTES):
            output.write(chunk)
            tail.add(chunk)
    finally:
        transport.close()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("%s failed", task.get_name())


class Supervisor:
    """One app: its record, its process, and the tasks that copy its output and restart it."""

    def __init__(self, home: Path, record: AppRecord, settings: AppSettings) -> None:
        self.home = home
        self.record = record
        self.settings = settings
        self.output = RotatingLog(
            home / "logs" / LOG_FILE, settings.log_max_bytes, settings.log_backups
        )
        self.process: Process | None = None
        self.tail = Tail()
        self.pump: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.attempt = 0

    @property
    def workdir(self) -> Path:
        """The unpacked version this record runs."""
        return self.home / self.record.sha256

    def launch(self) -> None:
        """Start the command; raise `UnitError` when it cannot be started at all."""
        try:
            read_fd = _open_fifo(self.home / PIPE)
        except OSError as err:
            raise UnitError(f"cannot start app {self.record.name}: {err}") from err
        try:
            self.process = spawn(self.record, self.workdir, self.home / PIPE)
        except BaseException:
            os.close(read_fd)
            raise
        self._watch_output(read_fd)
        self._update(
            state=UnitState.RUNNING,
            pid=self.process.pid,
            start_time=self.process.start_time,
            exit_code=None,
            last_error=None,
        )
        log.info("app %s started (pid %d)", self.record.name, self.process.pid)

    def adopt(self) -> None:
        """Watch the process an earlier agent started: read its FIFO, poll /proc for its end."""
        assert self.record.pid is not None
        self.process = Process(self.record.pid, self.record.start_time)
        try:
            self._watch_output(_open_fifo(self.home / PIPE))
        except OSError as err:
            log.warning("app %s: its output is lost until it restarts: %s", self.record.name, err)
        log.info("app %s adopted (pid %d)", self.record.name, self.record.pid)

    def supervise(self) -> None:
        """Begin restarting the app whenever it exits."""
        self.task = asyncio.create_task(self._supervise(), name=f"app {self.record.name}")

    def status(self) -> UnitStatus:
        """The record as the reconciler sees it."""
        r = self.record
        return UnitStatus(
            kind="app",
            name=r.name,
            fingerprint=r.fingerprint,
            bundle=r.bundle,
            state=r.state,
            since=r.since,
            exit_code=r.exit_code,
            restart_count=r.restart_count,
            artifact_sha256=r.sha256,
            last_error=r.last_error,
        )

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; forget the record."""
        await _cancel(self.task)
        if self.process is not None and self.process.alive():
            await self._terminate(self.process)
        await self._drain()
        self.output.close()
        (self.home / RECORD).unlink(missing_ok=True)

    async def _terminate(self, process: Process) -> None:
        process.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.exited(STOP_POLL_SECONDS), self.settings.stop_timeout)
        except TimeoutError:
            log.warning("app %s ignored SIGTERM; killing it", self.record.name)
            process.signal_group(signal.SIGKILL)
            try:
                await asyncio.wait_for(process.exited(STOP_POLL_SECONDS), 10.0)
            except TimeoutError:
                raise UnitError(
                    f"app {self.record.name} (pid {process.pid}) survived SIGKILL; "
                    "it may be stuck in the kernel (uninterruptible I/O)"
                ) from None
        # Helpers it left behind in its process group go too. It ended a moment ago, so
        # its pid cannot have been handed to another process group yet.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    async def detach(self) -> None:
        """Stop watching; the app keeps running and a later driver adopts it."""
        await _cancel(self.task)
        await _cancel(self.pump)
        self.output.close()
        if self.process is not None and self.process.child is not None:
            _DISOWNED.append(self.process.child)

    def save(self) -> None:
        """Write unit.json atomically (it holds the app's environment, so owner-only).

        A few hundred bytes: written inline so no write can land after `stop` removed it.
        """
        path = self.home / RECORD
        staging = path.with_name(f".{RECORD}.tmp")
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(self.record.dumps())
            os.replace(staging, path)
        except OSError as err:  # a full disk must not end supervision
            log.warning("cannot write %s: %s", path, err)

    def _update(self, **changes: Any) -> None:
        for key, value in {"since": now(), **changes}.items():
            setattr(self.record, key, value)
        self.save()

    def _watch_output(self, read_fd: int) -> None:
        self.tail = Tail()
        self.pump = asyncio.create_task(
            pump(read_fd, self.output, self.tail), name=f"app {self.record.name} output"
        )

    async def _drain(self) -> None:
        """Let the output reader reach the end, unless a leftover helper keeps the pipe open."""
        if self.pump is not None:
            await asyncio.wait({self.pump}, timeout=DRAIN_SECONDS)
            await _cancel(self.pump)

    async def _supervise(self) -> None:
        while self.process is not None:
            returncode = await self.process.exited(self.settings.poll_interval)
            await self._drain()
            await asyncio.sleep(self._crashed(returncode))
            try:
                self.launch()
            except UnitError as err:
                log.error("%s", err.reason)
                self.process = None
                self._update(state=UnitState.EXITED, pid=None, last_error=err.reason)

    def _crashed(self, returncode: int | None) -> float:
        """Record the exit and return how long to wait before the restart."""
        policy = self.settings.restart
        if (now() - self.record.since).total_seconds() >= policy.stable_after:
            self.attempt = 0
        delay = policy.delay(self.attempt)
        self.attempt += 1
        reason = _describe_exit(returncode, self.tail.last_line())
        self._update(
            state=UnitState.RESTARTING,
            pid=None,
            restart_count=self.record.restart_count + 1,
            exit_code=None if returncode is None else exit_status(returncode),
            last_error=reason,
        )
        log.warning("app %s %s; restarting in %gs", self.record.name, reason, delay)
        return delay


def single_file_name(spec: AppSpec) -> str:
    """The name a single-file artifact gets: what `./relay` asks for, else the URL's last part."""
    first = spec.command[0]
    if first.startswith("./") and first.count("/") == 1 and first[2:] not in ("", ".", ".."):
        return first[2:]
    url = spec.artifact.url
    name = unquote(PurePosixPath(urlsplit(url).path).name) if url else spec.artifact.name
    return name if name and name not in (".", "..") and "/" not in name else "artifact"


def check_command(spec: AppSpec, workdir: Path) -> None:
    """Refuse at prepare time a command that could never start, saying what is wrong."""
    first = spec.command[0]
    if "/" not in first:
        if shutil.which(first, path=app_env(spec.env)["PATH"]) is None:
            raise UnitError(f"command {first} is not on PATH for app {spec.name}")
        return
    target = Path(resolve(spec.command, workdir)[0]).resolve()
    if not os.path.isabs(first) and not target.is_relative_to(workdir.resolve()):
        raise UnitError(f"command {first} points outside the directory of app {spec.name}")
    if not target.is_file():
        held = ", ".join(sorted(p.name for p in workdir.iterdir())[:10]) or "nothing"
        raise UnitError(
            f"command {first} is not in the artifact of app {spec.name} (it holds: {held})"
        )
    if not os.access(target, os.X_OK):
        raise UnitError(
            f"command {first} of app {spec.name} is not executable (chmod +x it before packing)"
        )


class AppDriver:
    """Runs native apps from downloaded artifacts: implements `UnitDriver[AppSpec]`.

    Apps run in their own sessions and keep running when the agent stops; a new driver over
    the same `root` adopts them. Only units whose record names `owner` are touched.
    """

    kind = "app"

    def __init__(
        self,
        root: Path,
        owner: str,
        cache: ArtifactCache | None = None,
        *,
        settings: AppSettings | None = None,
        origin: ControlPlane | None = None,
    ) -> None:
        self.root = root
        self.owner = owner
        self.origin = origin
        self.cache = cache or ArtifactCache(root / "cache")
        self.settings = settings or AppSettings()
        self._owns_cache = cache is None
        self._units: dict[str, Supervisor] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._adopting = asyncio.Lock()
        self._adopted = False

    def home(self, name: str) -> Path:
        """The directory of app `name`: its versions, record, pipe and logs."""
        return self.root / "units" / name

    async def observe(self) -> list[UnitStatus]:
        """Every app this agent manages, running or not."""
        await self._ready()
        return [unit.status() for unit in self._units.values()]

    async def prepare(self, spec: AppSpec) -> None:
        """Download, verify and unpack the artifact; nothing to do when already unpacked."""
        await self._ready()
        async with self._lock(spec.name):
            await self._prepare(spec)

    async def start(self, spec: AppSpec, fingerprint: str, bundle: str) -> None:
        """Stop the app of that name if it runs, then run `spec` under supervision."""
        await self._ready()
        async with self._lock(spec.name):
            await self._refuse_foreign(spec.name)
            await self._prepare(spec)
            await self._stop(spec.name)
            record = AppRecord(
                name=spec.name,
                owner=self.owner,
                fingerprint=fingerprint,
                bundle=bundle,
                sha256=spec.artifact.sha256,
                command=list(spec.command),
                env=dict(spec.env),
            )
            unit = Supervisor(self.home(spec.name), record, self.settings)
            unit.launch()
            unit.supervise()
            self._units[spec.name] = unit

    async def stop(self, name: str) -> None:
        """Stop app `name` (SIGTERM, then SIGKILL) and forget it; a missing app is fine."""
        await self._ready()
        async with self._lock(name):
            await self._stop(name)

    async def exec(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run `argv` in the app's directory and environment: exit status and output tail.

        A command still running after `timeout` seconds is killed and reported as 124, the
        status `timeout(1)` uses; one that cannot be started gets 126 or 127, as in a shell.
        """
        await self._ready()
        unit = self._units.get(name)
        if unit is None:
            raise UnitError(f"app {name} is not managed by this agent")
        workdir = unit.workdir
        return await run_command(resolve(argv, workdir), workdir, app_env(unit.record.env), timeout)

    async def logs(self, name: str, lines: int = 20) -> str:
        """The last `lines` lines app `name` wrote (empty when it never wrote anything)."""
        return await asyncio.to_thread(read_log_tail, self.home(name) / "logs" / LOG_FILE, lines)

    async def gc(self, keep: set[str]) -> None:
        """Delete unpacked versions and cached blobs whose sha256 is not in `keep`.

        What runs now is always kept; so are apps of other owners. The directory of an app
        that is no longer managed goes entirely once none of its versions is kept.
        """
        await self._ready()
        keep = keep | {unit.record.sha256 for unit in self._units.values()}
        await asyncio.to_thread(self._remove_versions, keep, set(self._units))
        await self.cache.gc(keep)

    async def close(self) -> None:
        """Stop supervising; the apps keep running for the next agent to adopt."""
        for unit in self._units.values():
            await unit.detach()
        self._units.clear()
        self._adopted = False
        if self._owns_cache:
            await self.cache.close()

    async def _prepare(self, spec: AppSpec) -> None:
        workdir = self.home(spec.name) / spec.artifact.sha256
        if not await asyncio.to_thread(workdir.is_dir):
            url, headers = self._source(spec)
            blob = await self.cache.fetch(url, spec.artifact.sha256, headers)
            await asyncio.to_thread(unpack, blob, workdir, single_file_name(spec))
            log.info("app %s: unpacked %s", spec.name, spec.artifact.sha256[:12])
        await asyncio.to_thread(check_command, spec, workdir)

    def _source(self, spec: AppSpec) -> tuple[str, dict[str, str] | None]:
        """Where the artifact comes from: its URL, else the control plane, as this device."""
        if spec.artifact.url is not None:
            return spec.artifact.url, None
        if self.origin is None:
            raise UnitError(
                f"app {spec.name} takes its artifact from the control plane (no url), but this "
                "agent was not given a server to download from"
            )
        return self.origin.url(spec.artifact.sha256), self.origin.headers()

    async def _stop(self, name: str) -> None:
        unit = self._units.pop(name, None)
        if unit is not None:
            await unit.stop()
            log.info("app %s stopped", name)

    async def _refuse_foreign(self, name: str) -> None:
        if name in self._units:
            return
        record = await asyncio.to_thread(_read_record, self.home(name) / RECORD)
        if record is not None and record.owner != self.owner:
            raise UnitError(
                f"app {name} belongs to another agent ({record.owner}); not touching it"
            )

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _ready(self) -> None:
        """Adopt the apps an earlier agent left running, once, before the first use."""
        if self._adopted:
            return
        async with self._adopting:
            if self._adopted:
                return
            for record in await asyncio.to_thread(self._records):
                self._units[record.name] = self._adopt(record)
            self._adopted = True

    def _adopt(self, record: AppRecord) -> Supervisor:
        unit = Supervisor(self.home(record.name), record, self.settings)
        if record.pid is not None and Process(record.pid, record.start_time).alive():
            unit.adopt()
        else:
            # It ended while no agent watched (a reboot, a crash): run it again straight away.
            try:
                unit.launch()
            except UnitError as err:
                log.error("%s", err.reason)
                unit.record.state, unit.record.last_error = UnitState.EXITED, err.reason
                unit.save()
                return unit
        unit.supervise()
        return unit

    def _records(self) -> list[AppRecord]:
        units = self.root / "units"
        paths = sorted(units.glob(f"*/{RECORD}")) if units.is_dir() else []
        records = [record for path in paths if (record := _read_record(path)) is not None]
        return [record for record in records if record.owner == self.owner]

    def _remove_versions(self, keep: set[str], managed: set[str]) -> None:
        units = self.root / "units"
        for home in sorted(units.iterdir()) if units.is_dir() else []:
            if home.name not in managed and (home / RECORD).exists():
                continue  # another owner's app
            versions = [p for p in home.iterdir() if p.is_dir() and len(p.name) == 64]
            for version in versions:
                if version.name not in keep:
                    shutil.rmtree(version, ignore_errors=True)
            if home.name not in managed and not any(v.name in keep for v in versions):
                shutil.rmtree(home, ignore_errors=True)


def _read_record(path: Path) -> AppRecord | None:
    try:
        return AppRecord.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring damaged %s: %s", path, err)
        return None


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
