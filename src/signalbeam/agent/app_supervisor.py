"""One supervised native app: its record, its process, its output, its restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from signalbeam.agent.app_output import LOG_FILE, RotatingLog, Tail, open_fifo, pump
from signalbeam.agent.app_process import Process, describe_exit, disown, exit_status, spawn
from signalbeam.agent.app_record import RECORD, AppRecord, AppSettings, now
from signalbeam.agent.units import UnitError, UnitState, UnitStatus

log = logging.getLogger(__name__)
PIPE = "output.pipe"
DRAIN_SECONDS = 2.0
STOP_POLL_SECONDS = 0.05


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


def slot_files(home: Path, slot: str) -> tuple[Path, Path, Path]:
    """(record, FIFO, log) of a copy: `unit.json`, `output.pipe` and `logs/output.log`, or
    `unit.next.json`, `output.next.pipe` and `logs/output.next.log` for a new copy started
    beside the running one."""
    if not slot:
        return home / RECORD, home / PIPE, home / "logs" / LOG_FILE
    return (
        home / f"unit.{slot}.json",
        home / f"output.{slot}.pipe",
        home / "logs" / f"output.{slot}.log",
    )


class Supervisor:
    """One app: its record, its process, and the tasks that copy its output and restart it.

    `slot` names a second copy running beside the first during a start-first update; it has
    its own record, FIFO and log file until `promote` makes it the app.
    """

    def __init__(
        self, home: Path, record: AppRecord, settings: AppSettings, slot: str = ""
    ) -> None:
        self.home = home
        self.record = record
        self.settings = settings
        self.record_path, self.pipe_path, self.log_path = slot_files(home, slot)
        self.output = RotatingLog(self.log_path, settings.log_max_bytes, settings.log_backups)
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
            read_fd = open_fifo(self.pipe_path)
        except OSError as err:
            raise UnitError(f"cannot start app {self.record.name}: {err}") from err
        try:
            self.process = spawn(self.record, self.workdir, self.pipe_path)
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
            self._watch_output(open_fifo(self.pipe_path))
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
            update_order=r.update_order,
        )

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; forget the record."""
        await _cancel(self.task)
        if self.process is not None and self.process.alive():
            await self._terminate(self.process)
        await self._drain()
        self.output.close()
        self.record_path.unlink(missing_ok=True)

    def promote(self) -> None:
        """This copy becomes the app: its record and FIFO take the usual names.

        The process keeps its descriptors of the FIFO, which a rename does not touch, so a
        later agent that opens `output.pipe` reads this copy's output.
        """
        record, pipe, output = slot_files(self.home, "")
        if self.pipe_path == pipe:
            return
        os.replace(self.pipe_path, pipe)
        staged, self.record_path, self.pipe_path = self.record_path, record, pipe
        self.save()
        staged.unlink(missing_ok=True)
        # What it wrote so far joins the app's log (a few seconds' worth: the overlap).
        self.output.close()
        try:
            with self.log_path.open("rb") as written, output.open("ab") as log_file:
                shutil.copyfileobj(written, log_file)
            self.log_path.unlink()
        except OSError as err:
            log.warning("app %s: could not move its log: %s", self.record.name, err)
        # The output reader holds this very log object: pointing it elsewhere redirects it.
        self.log_path = self.output.path = output

    async def restart(self) -> None:
        """Stop the process (as `stop` does, keeping the record) and launch it again at once.

        Counted as a restart; the crash backoff starts over, as after a clean start.
        """
        await _cancel(self.task)
        if self.process is not None and self.process.alive():
            await self._terminate(self.process)
        await self._drain()
        self.attempt = 0
        self.record.restart_count += 1
        try:
            self.launch()
        except UnitError as err:
            self.process = None
            self._update(state=UnitState.EXITED, pid=None, last_error=err.reason)
            raise
        self.supervise()

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
            disown(self.process.child)

    def save(self) -> None:
        """Write unit.json atomically (it holds the app's environment, so owner-only).

        A few hundred bytes: written inline so no write can land after `stop` removed it.
        """
        path = self.record_path
        staging = path.with_name(f".{path.name}.tmp")
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
        reason = describe_exit(returncode, self.tail.last_line())
        self._update(
            state=UnitState.RESTARTING,
            pid=None,
            restart_count=self.record.restart_count + 1,
            exit_code=None if returncode is None else exit_status(returncode),
            last_error=reason,
        )
        log.warning("app %s %s; restarting in %gs", self.record.name, reason, delay)
        return delay
