"""The native-app driver with real processes, real archives and a real HTTP artifact server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import signal
import sys
import tarfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from signalbeam.agent.apps import (
    AppDriver,
    AppRecord,
    AppSettings,
    process_start_time,
)
from signalbeam.agent.spec import AppSpec, parse_unit, unit_fingerprint
from signalbeam.agent.units import RestartPolicy, UnitError, UnitState, UnitStatus
from tests.agent.test_artifacts import ArtifactServer, artifact_server
from tests.components import free_port

__all__ = ["artifact_server"]  # the fixture, shared with the cache tests

T = TypeVar("T")
Files = dict[str, tuple[str, int]]
PY = sys.executable
OWNER = "device-1"
FAST = AppSettings(restart=RestartPolicy(base=0.2, cap=1.0), stop_timeout=5.0, poll_interval=0.1)

SERVER = """\
import os, socket
port = int(os.environ["PORT"])
server = socket.create_server(("127.0.0.1", port))
print(f"listening on {port}", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        print("visitor", flush=True)
        conn.sendall(f"{os.environ.get('GREETING', '')} {os.getpid()}\\n".encode())
"""
RELAY = f'#!/bin/sh\nexec {PY} -u server.py "$@"\n'
CHECK = '#!/bin/sh\necho "ok in $(pwd) saying $GREETING"\n'
CRASH = '#!/bin/sh\necho starting\necho "boom: config.yaml missing" >&2\nexit 3\n'
STUBBORN = """\
import signal, time
signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", flush=True))
print("ready", flush=True)
while True:
    time.sleep(1)
"""
NOISY = """\
import sys, time
for i in range(50_000):
    sys.stdout.write(f"line {i:06d} {'x' * 90}\\n")
sys.stdout.write("done\\n")
sys.stdout.flush()
time.sleep(1000)
"""
RELAY_FILES: Files = {
    "relay": (RELAY, 0o755),
    "server.py": (SERVER, 0o644),
    "check.sh": (CHECK, 0o755),
}


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 15) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def tar_bytes(files: Files, mode: str = "w:gz") -> bytes:
    """A tar archive (gzip-compressed unless `mode` says otherwise) holding `files`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for name, (text, perm) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text.encode()), perm
            archive.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def zip_bytes(files: Files) -> bytes:
    """A zip archive holding `files`, with their permissions recorded."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (text, perm) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | perm) << 16
            archive.writestr(info, text)
    return out.getvalue()


class Apps:
    """Publishes artifacts and makes drivers over one root; cleans every process up after."""

    def __init__(self, root: Path, server: ArtifactServer) -> None:
        self.root = root
        self.server = server
        self.drivers: list[AppDriver] = []

    def driver(self, settings: AppSettings = FAST) -> AppDriver:
        """A new driver over the shared root, as after an agent restart."""
        made = AppDriver(self.root, OWNER, settings=settings)
        self.drivers.append(made)
        return made

    def spec(self, name: str, data: bytes, command: list[str], **env: str) -> AppSpec:
        """Serve `data` and describe an app running `command` from it."""
        url = self.server.add(f"/download/{name}-{len(self.server.blobs)}.zip", data)
        sha = hashlib.sha256(data).hexdigest()
        artifact = {"url": url, "sha256": sha}
        return parse_unit(
            {"name": name, "artifact": artifact, "command": command, "env": env}, AppSpec
        )

    def record(self, name: str) -> AppRecord:
        """What unit.json says runs for `name`."""
        return AppRecord.loads((self.root / "units" / name / "unit.json").read_text())

    def processes(self) -> list[int]:
        """Every live process whose working directory is under the root."""
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                pid = int(entry.name) if entry.name.isdigit() else 0
                live = pid > 0 and process_start_time(pid) is not None
                if live and os.readlink(entry / "cwd").startswith(f"{self.root}/"):
                    found.append(pid)
        return found

    async def close(self) -> None:
        """Stop what the open drivers run, close them, then kill anything left."""
        for made in self.drivers[-1:]:
            for status in await made.observe():
                await made.stop(status.name)
        for made in self.drivers:
            await made.close()
        for pid in self.processes():  # a safety net: a passing test leaves nothing here
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def apps(tmp_path: Path, artifact_server: ArtifactServer) -> AsyncIterator[Apps]:
    """Drivers over `tmp_path/apps` with fast restarts; all their processes end with the test."""
    made = Apps(tmp_path / "apps", artifact_server)
    yield made
    await made.close()


async def start(driver: AppDriver, spec: AppSpec) -> None:
    """What the reconciler does: prepare, then start."""
    await driver.prepare(spec)
    await driver.start(spec, unit_fingerprint(spec), "edge@1.0.0")


async def status_of(driver: AppDriver, name: str) -> UnitStatus | None:
    """The driver's view of app `name`."""
    return next((s for s in await driver.observe() if s.name == name), None)


async def greet(port: int) -> str | None:
    """The line the relay answers with (`<greeting> <pid>`), or None when nothing answers."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        line = await reader.readline()
    except OSError:  # it died while answering
        line = b""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return line.decode().strip() or None


async def test_start_observe_stop(apps: Apps) -> None:
    driver = apps.driver()
    port = free_port()
    spec = apps.spec("relay", tar_bytes(RELAY_FILES), ["./relay"], PORT=str(port), GREETING="hi")
    await start(driver, spec)
    answer = await eventually(lambda: greet(port), "the relay to listen")
    pid = apps.record("relay").pid
    assert answer == f"hi {pid}"
    status = await status_of(driver, "relay")
    assert status is not None
    assert (status.state, status.fingerprint, status.bundle) == (
        UnitState.RUNNING,
        unit_fingerprint(spec),
        "edge@1.0.0",
    )
    assert status.artifact_sha256 == spec.artifact.sha256 and status.restart_count == 0
    assert "listening on" in await driver.logs("relay")

    await driver.stop("relay")
    assert await greet(port) is None
    assert apps.processes() == []
    assert await driver.observe() == []
    assert not (apps.root / "units" / "relay" / "unit.json").exists()
    await driver.stop("relay")  # stopping what is not there is fine


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip", "file"])
async def test_unpacks_by_content_not_by_name(apps: Apps, kind: str) -> None:
    script = f'#!/bin/sh\necho "hello from {kind}"\nexec sleep 1000\n'
    files: Files = {"hello": (script, 0o755)}
    packers: dict[str, Callable[[], bytes]] = {
        "tar": lambda: tar_bytes(files, "w"),
        "tar.gz": lambda: tar_bytes(files),
        "zip": lambda: zip_bytes(files),
        "file": script.encode,
    }
    data = packers[kind]()
    driver = apps.driver()
    await start(driver, apps.spec("hello", data, ["./hello"]))  # served as .zip whatever it is
    await eventually(lambda: _contains(driver, "hello", f"hello from {kind}"), "its greeting")


async def _contains(driver: AppDriver, name: str, text: str) -> bool:
    return text in await driver.logs(name, 200)


@pytest.mark.parametrize(
    ("member", "data"),
    [
        ("../escape.sh", tar_bytes({"../escape.sh": ("x", 0o755)})),
        ("/tmp/escape.sh", tar_bytes({"/tmp/escape.sh": ("x", 0o755)})),
        ("../escape.sh", zip_bytes({"../escape.sh": ("x", 0o755)})),
    ],
)
async def test_path_traversal_is_refused(apps: Apps, member: str, data: bytes) -> None:
    driver = apps.driver()
    spec = apps.spec("evil", data, ["./escape.sh"])
    with pytest.raises(UnitError) as caught:
        await driver.prepare(spec)
    assert f'member "{member}" would land outside the app directory' in caught.value.reason
    assert "unsafe to unpack" in caught.value.reason
    assert not (apps.root / "units" / "evil" / spec.artifact.sha256).exists()
    assert not list(apps.root.parent.rglob("escape.sh"))


async def test_link_out_of_the_app_directory_is_refused(apps: Apps) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        archive.addfile(link)
    spec = apps.spec("evil", out.getvalue(), ["./passwd"])
    with pytest.raises(UnitError, match="unsafe to unpack: 'passwd' would link to"):
        await apps.driver().prepare(spec)


async def test_digest_mismatch_is_never_unpacked(apps: Apps) -> None:
    good = apps.spec("relay", tar_bytes(RELAY_FILES), ["./relay"])
    tampered = tar_bytes({**RELAY_FILES, "server.py": ("import os; os.system('evil')", 0o644)})
    apps.server.blobs[urlpath(good)] = tampered
    with pytest.raises(
        UnitError, match=r"^artifact sha256 mismatch: expected \w{12}…, got \w{12}…$"
    ):
        await apps.driver().prepare(good)
    assert not (apps.root / "units" / "relay" / good.artifact.sha256).exists()
    assert not (apps.root / "cache" / good.artifact.sha256).exists()


def urlpath(spec: AppSpec) -> str:
    """The path part of the spec's artifact URL on the test server."""
    url = spec.artifact.url
    assert url is not None, "these tests serve every artifact from a URL"
    return "/" + url.split("/", 3)[3]


async def test_missing_command_is_refused_at_prepare(apps: Apps) -> None:
    spec = apps.spec("relay", tar_bytes(RELAY_FILES), ["./rely"])
    with pytest.raises(
        UnitError, match=r"command ./rely is not in the artifact .*holds: check.sh, relay"
    ):
        await apps.driver().prepare(spec)


async def test_crash_loop_reports_restarting_with_the_reason(apps: Apps) -> None:
    driver = apps.driver()
    await start(
        driver, apps.spec("crashy", tar_bytes({"crash.sh": (CRASH, 0o755)}), ["./crash.sh"])
    )

    async def restarting() -> UnitStatus | None:
        status = await status_of(driver, "crashy")
        return status if status and status.state is UnitState.RESTARTING else None

    status = await eventually(restarting, "a restart")
    assert status.exit_code == 3 and status.restart_count >= 1
    assert status.last_error == "exited with code 3: boom: config.yaml missing"

    async def restarted_twice() -> UnitStatus | None:
        status = await restarting()
        return status if status and status.restart_count >= 2 else None

    await eventually(restarted_twice, "a second restart")
    assert (await driver.logs("crashy", 4)).count("starting") == 2


async def test_new_driver_adopts_the_running_app(apps: Apps) -> None:
    port = free_port()
    spec = apps.spec("relay", tar_bytes(RELAY_FILES), ["./relay"], PORT=str(port), GREETING="hi")
    first = apps.driver()
    await start(first, spec)
    answer = await eventually(lambda: greet(port), "the relay to listen")
    await first.close()  # the agent stops; the app does not
    # Nobody reads its output now: it must neither die of SIGPIPE nor lose this visitor line.
    assert await greet(port) == answer

    second = apps.driver()
    status = await status_of(second, "relay")
    assert status is not None and status.state is UnitState.RUNNING
    assert status.fingerprint == unit_fingerprint(spec)
    pid = apps.record("relay").pid
    assert apps.processes() == [pid]  # adopted, not started twice
    assert await greet(port) == answer == f"hi {pid}"
    # The new driver reads the app's output where the old one left off.
    await eventually(lambda: _visitors(second, 3), "the third visitor in the log")

    await second.stop("relay")
    assert await greet(port) is None
    assert apps.processes() == []


async def _visitors(driver: AppDriver, count: int) -> bool:
    return (await driver.logs("relay", 50)).count("visitor") >= count


async def test_adopted_app_that_dies_is_restarted(apps: Apps) -> None:
    port = free_port()
    spec = apps.spec("relay", tar_bytes(RELAY_FILES), ["./relay"], PORT=str(port))
    first = apps.driver()
    await start(first, spec)
    await eventually(lambda: greet(port), "the relay to listen")
    old = apps.record("relay").pid
    await first.close()
    second = apps.driver()
    assert (await second.observe())[0].state is UnitState.RUNNING
    assert old is not None
    os.kill(old, signal.SIGKILL)

    async def new_pid() -> str | None:
        answer = await greet(port)
        return answer if answer and answer != str(old) else None

    answer = await eventually(new_pid, "the relay to come back")
    status = await status_of(second, "relay")
    assert status is not None and status.state is UnitState.RUNNING and status.restart_count == 1
    assert answer == str(apps.record("relay").pid) and apps.processes() == [int(answer)]


async def test_app_that_ended_while_no_agent_ran_starts_again(apps: Apps) -> None:
    port = free_port()
    first = apps.driver()
    await start(first, apps.spec("relay", tar_bytes(RELAY_FILES), ["./relay"], PORT=str(port)))
    await eventually(lambda: greet(port), "the relay to listen")
    old = apps.record("relay").pid
    await first.close()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    await eventually(_async(lambda: process_start_time(old) is None), "the relay to die")

    second = apps.driver()
    status = await status_of(second, "relay")
    assert status is not None and status.state is UnitState.RUNNING
    assert await eventually(lambda: greet(port), "the relay to listen again") != str(old)


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def test_log_rotates_while_the_app_runs(apps: Apps) -> None:
    driver = apps.driver()
    await start(
        driver, apps.spec("noisy", tar_bytes({"noisy.py": (NOISY, 0o644)}), [PY, "noisy.py"])
    )
    await eventually(lambda: _last_line_is(driver, "done"), "the last line", timeout=30)
    status = await status_of(driver, "noisy")
    assert status is not None and status.state is UnitState.RUNNING and status.restart_count == 0
    logs = apps.root / "units" / "noisy" / "logs"
    files = sorted(p.name for p in logs.iterdir())
    assert files == ["output.log", "output.log.1", "output.log.2", "output.log.3"]
    assert all((logs / name).stat().st_size <= 1 << 20 for name in files)
    everything = "".join((logs / name).read_text() for name in files)
    assert "line 000000 " not in everything  # the oldest output went with the oldest file
    assert "line 049999 " in everything


async def _last_line_is(driver: AppDriver, text: str) -> bool:
    return await driver.logs("noisy", 1) == text


async def test_exec_runs_in_the_app_directory_and_environment(apps: Apps) -> None:
    driver = apps.driver()
    spec = apps.spec(
        "relay", tar_bytes(RELAY_FILES), ["./relay"], PORT=str(free_port()), GREETING="hi"
    )
    await start(driver, spec)
    workdir = apps.root / "units" / "relay" / spec.artifact.sha256
    assert await driver.exec("relay", ["./check.sh"], 5) == (0, f"ok in {workdir} saying hi\n")
    assert await driver.exec("relay", ["sh", "-c", "echo nope >&2; exit 2"], 5) == (2, "nope\n")
    assert (await driver.exec("relay", ["./nothing"], 5))[0] == 127
    began = time.monotonic()
    code, output = await driver.exec("relay", ["sh", "-c", "echo waiting; exec sleep 30"], 0.5)
    assert (code, output) == (124, "waiting\n\ntimed out after 0.5s and was killed")
    assert time.monotonic() - began < 5
    with pytest.raises(UnitError, match="app other is not managed by this agent"):
        await driver.exec("other", ["true"], 1)


async def test_stop_kills_an_app_that_ignores_sigterm(apps: Apps) -> None:
    driver = apps.driver(AppSettings(stop_timeout=1.0))
    await start(driver, apps.spec("stubborn", tar_bytes({"s.py": (STUBBORN, 0o644)}), [PY, "s.py"]))
    await eventually(lambda: _contains(driver, "stubborn", "ready"), "the app to be ready")
    pid = apps.record("stubborn").pid
    began = time.monotonic()
    await driver.stop("stubborn")
    assert 1.0 <= time.monotonic() - began < 8
    assert pid is not None and process_start_time(pid) is None
    assert "ignoring SIGTERM" in await driver.logs("stubborn")


async def test_rollback_is_a_switch_and_gc_removes_old_versions(apps: Apps) -> None:
    driver = apps.driver()
    versions = []
    for text in ("v1", "v2"):
        script = f"#!/bin/sh\necho {text}\nexec sleep 1000\n"
        versions.append(apps.spec("app", tar_bytes({"run": (script, 0o755)}), ["./run"]))
    v1, v2 = versions
    for spec in (v1, v2, v1):
        await start(driver, spec)
    await eventually(lambda: _contains_count(driver, "v1", 2), "v1 to run again")
    assert [len(apps.server.requests(urlpath(v))) for v in (v1, v2)] == [1, 1]

    await driver.gc(set())  # what runs is kept regardless
    home = apps.root / "units" / "app"
    assert (home / v1.artifact.sha256).is_dir() and not (home / v2.artifact.sha256).exists()
    assert sorted(p.name for p in (apps.root / "cache").iterdir()) == [v1.artifact.sha256]
    status = await status_of(driver, "app")
    assert status is not None and status.state is UnitState.RUNNING
    await driver.prepare(v2)
    assert len(apps.server.requests(urlpath(v2))) == 2


async def _contains_count(driver: AppDriver, text: str, count: int) -> bool:
    return (await driver.logs("app", 50)).count(text) >= count
