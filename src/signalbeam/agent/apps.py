"""Native apps: artifacts unpacked per version, run as supervised processes that outlive the agent.

Layout under `root`: `units/<name>/<sha256>/` (one unpacked version each), `units/<name>/unit.json`
(what runs, so a restarted agent adopts it), `units/<name>/output.pipe` (a FIFO carrying the
app's stdout and stderr) and `units/<name>/logs/output.log` (rotated). The FIFO, unlike an
anonymous pipe, can be opened again by the next agent, and the app holds a read end of it
itself, so an agent restart never breaks its pipe (no SIGPIPE): output waits in the pipe
buffer (1 MiB) until the new agent reads it, and an app that writes more than that while no
agent runs blocks on its write instead of dying.

This module is the driver; its parts are `app_record` (unit.json), `app_output` (the FIFO and
the rotating log), `app_process` (starting, waiting for and signalling a process) and
`app_supervisor` (one app's restarts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal as signals
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from signalbeam.agent.app_output import LOG_FILE, read_log_tail
from signalbeam.agent.app_process import (
    Process,
    app_env,
    process_start_time,
    resolve,
    run_command,
)
from signalbeam.agent.app_record import RECORD, AppRecord, AppSettings, read_record
from signalbeam.agent.app_supervisor import Supervisor, slot_files
from signalbeam.agent.artifacts import ArtifactCache, ControlPlane, unpack
from signalbeam.agent.spec import AppSpec
from signalbeam.agent.units import UnitError, UnitState, UnitStatus

# What other modules and tests import from here; the parts live in app_*.py.
__all__ = [
    "AppDriver",
    "AppRecord",
    "AppSettings",
    "app_env",
    "check_command",
    "process_start_time",
    "single_file_name",
]

log = logging.getLogger(__name__)
START_FIRST = "start-first"
NEXT = "next"  # the slot of a copy started beside the running one


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
        # New copies started beside the running ones (start-first), until `retire`.
        self._staged: dict[str, Supervisor] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._adopting = asyncio.Lock()
        self._adopted = False

    def home(self, name: str) -> Path:
        """The directory of app `name`: its versions, record, pipe and logs."""
        return self.root / "units" / name

    def workdir(self, spec: AppSpec) -> Path:
        """The directory `spec` runs in: its unpacked artifact (config files go here too)."""
        return self.home(spec.name) / spec.artifact.sha256

    async def observe(self) -> list[UnitStatus]:
        """Every app this agent manages, running or not."""
        await self._ready()
        return [unit.status() for unit in {**self._units, **self._staged}.values()]

    async def prepare(self, spec: AppSpec) -> None:
        """Download, verify and unpack the artifact; nothing to do when already unpacked."""
        await self._ready()
        async with self._lock(spec.name):
            await self._prepare(spec)

    async def start(
        self, spec: AppSpec, fingerprint: str, bundle: str, order: str | None = None
    ) -> None:
        """Run `spec` under supervision: replacing the app of that name (stopped first), or
        with `order` start-first beside it, until `retire` stops the old copy."""
        await self._ready()
        async with self._lock(spec.name):
            await self._refuse_foreign(spec.name)
            await self._prepare(spec)
            beside = order == START_FIRST and spec.name in self._units
            if beside:
                await self._stop_staged(spec.name)
            else:
                await self._stop(spec.name)
            record = AppRecord(
                name=spec.name,
                owner=self.owner,
                fingerprint=fingerprint,
                bundle=bundle,
                sha256=spec.artifact.sha256,
                command=list(spec.command),
                env=dict(spec.env),
                update_order=order,
            )
            unit = Supervisor(self.home(spec.name), record, self.settings, NEXT if beside else "")
            unit.launch()
            unit.supervise()
            (self._staged if beside else self._units)[spec.name] = unit

    async def retire(self, name: str) -> None:
        """The copy started beside the running one takes over; the old one stops."""
        await self._ready()
        async with self._lock(name):
            staged = self._staged.pop(name, None)
            if staged is None:
                return
            await self._stop(name)
            staged.promote()
            self._units[name] = staged
            log.info("app %s: the new copy took over, the old one stopped", name)

    async def abandon(self) -> None:
        """Stop every copy started beside a running one (a failed update); the old ones stay."""
        await self._ready()
        for name in list(self._staged):
            async with self._lock(name):
                await self._stop_staged(name)
                log.info("app %s: stopped the new copy; the old one keeps running", name)

    async def stop(self, name: str) -> None:
        """Stop app `name` (SIGTERM, then SIGKILL) and forget it; a missing app is fine."""
        await self._ready()
        async with self._lock(name):
            await self._stop(name)

    async def restart_unit(self, name: str) -> None:
        """Stop app `name` cleanly and start it again from the same version (an operator asked)."""
        await self._ready()
        async with self._lock(name):
            unit = self._units.get(name)
            if unit is None:
                raise UnitError(f"app {name} is not managed by this agent")
            await unit.restart()

    async def signal(self, name: str, signal: str) -> None:
        """Send `signal` to app `name` (its new copy, while one starts beside it)."""
        await self._ready()
        unit = self._staged.get(name) or self._units.get(name)
        if unit is None or unit.process is None or not unit.process.alive():
            raise UnitError(f"app {name} is not running, so it cannot take {signal}")
        unit.process.kill(signals.Signals[signal])
        log.info("app %s: sent %s", name, signal)

    async def exec(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run `argv` in the app's directory and environment: exit status and output tail.

        A command still running after `timeout` seconds is killed and reported as 124, the
        status `timeout(1)` uses; one that cannot be started gets 126 or 127, as in a shell.
        """
        await self._ready()
        unit = self._staged.get(name) or self._units.get(name)
        if unit is None:
            raise UnitError(f"app {name} is not managed by this agent")
        workdir = unit.workdir
        return await run_command(resolve(argv, workdir), workdir, app_env(unit.record.env), timeout)

    async def logs(self, name: str, lines: int = 20) -> str:
        """The last `lines` lines app `name` wrote (empty when it never wrote anything)."""
        staged = self._staged.get(name)
        path = staged.log_path if staged else self.home(name) / "logs" / LOG_FILE
        return await asyncio.to_thread(read_log_tail, path, lines)

    async def gc(self, keep: set[str]) -> None:
        """Delete unpacked versions and cached blobs whose sha256 is not in `keep`.

        What runs now is always kept; so are apps of other owners. The directory of an app
        that is no longer managed goes entirely once none of its versions is kept.
        """
        await self._ready()
        running = [*self._units.values(), *self._staged.values()]
        keep = keep | {unit.record.sha256 for unit in running}
        await asyncio.to_thread(self._remove_versions, keep, set(self._units))
        await self.cache.gc(keep)

    async def close(self) -> None:
        """Stop supervising; the apps keep running for the next agent to adopt."""
        for unit in [*self._units.values(), *self._staged.values()]:
            await unit.detach()
        self._units.clear()
        self._staged.clear()
        self._adopted = False
        if self._owns_cache:
            await self.cache.close()

    async def _prepare(self, spec: AppSpec) -> None:
        workdir = self.workdir(spec)
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

    async def _stop_staged(self, name: str) -> None:
        unit = self._staged.pop(name, None)
        if unit is not None:
            await unit.stop()

    async def _stop(self, name: str) -> None:
        await self._stop_staged(name)
        unit = self._units.pop(name, None)
        if unit is not None:
            await unit.stop()
            log.info("app %s stopped", name)

    async def _refuse_foreign(self, name: str) -> None:
        if name in self._units:
            return
        record = await asyncio.to_thread(read_record, self.home(name) / RECORD)
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
            await self._end_interrupted_switches()
            self._adopted = True

    async def _end_interrupted_switches(self) -> None:
        """Stop new copies an earlier agent started beside running ones and never retired.

        That update did not finish, so its desired state is applied again from the start.
        """
        units = self.root / "units"
        paths = (
            sorted(units.glob(f"*/{slot_files(Path(), NEXT)[0].name}")) if units.is_dir() else []
        )
        for path in paths:
            record = read_record(path)
            if record is None or record.owner != self.owner:
                continue
            unit = Supervisor(path.parent, record, self.settings, NEXT)
            if record.pid is not None:
                unit.process = Process(record.pid, record.start_time)
            log.warning("app %s: stopping a new copy left by an interrupted update", record.name)
            await unit.stop()

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
        records = [record for path in paths if (record := read_record(path)) is not None]
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
