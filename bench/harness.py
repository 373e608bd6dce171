"""The measuring side: a real server process, a fresh database, CPU/RSS sampling, the load process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped, unused-ignore]

POSTGRES = ("127.0.0.1", 5432, "postgres")
READY_SECONDS = 90.0
SAMPLE_SECONDS = 0.5


class Skip(Exception):
    """This scenario cannot run here; the message says why."""


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the JSON)."""
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def _postgres(statement: str) -> None:
    import asyncpg

    host, port, user = POSTGRES
    connection = await asyncpg.connect(host=host, port=port, user=user, database="postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def database(backend: str) -> Iterator[str | None]:
    """A fresh database URL for `backend` (None: SQLite in the server's data dir), dropped after."""
    if backend == "sqlite":
        yield None
        return
    host, port, user = POSTGRES
    if not _reachable(host, port):
        raise Skip(f"PostgreSQL not reachable at {host}:{port}")
    name = f"signalbeam_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{user}@{host}:{port}/{name}"
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Server:
    """A running `signalbeam server` process."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def admin_token(self) -> str:
        """The first admin's API token, from the data dir."""
        return (self.data_dir / "admin-token").read_text().strip()

    def enrollment_token(self) -> str:
        """A new enrollment token for the bench devices."""
        response = httpx.post(
            f"{self.url}/api/v1/enrollment-tokens",
            json={"labels": {"bench": "yes"}, "expires_in": "24h"},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    tail = server.log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"signalbeam server did not become ready:\n{tail}")


def start_server(
    workdir: Path, database_url: str | None, extra: list[str], port: int | None = None
) -> Server:
    """Start `python -m signalbeam server` (on `port`, or a free one) and wait until it is ready.

    Started again with the same workdir, database and port, it is the same server after a restart.
    """
    data_dir, port = workdir / "data", port or free_port()
    command = [sys.executable, "-m", "signalbeam", "server", "--data-dir", str(data_dir)]
    command += ["--port", str(port), "--no-mdns", *extra]
    if database_url:
        command += ["--database-url", database_url]
    log_path = workdir / "server.log"
    with log_path.open("ab") as output:
        # Our own interpreter and arguments, not outside input.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    server = Server(process, "127.0.0.1", port, data_dir, log_path)
    try:
        _wait_ready(server)
    except RuntimeError:
        stop_server(server)
        raise
    return server


def stop_server(server: Server, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextlib.contextmanager
def run_server(workdir: Path, database_url: str | None, extra: list[str]) -> Iterator[Server]:
    """Start `python -m signalbeam server` on a free port; stop it (SIGTERM) afterwards."""
    server = start_server(workdir, database_url, extra)
    try:
        yield server
    finally:
        stop_server(server)


@dataclass
class Sample:
    """One sampling instant (CPU percentages: 100 = one core)."""

    at: float
    server_cpu: float
    server_rss: int
    load_cpu: float | None
    system_cpu: float


class Sampler(threading.Thread):
    """Samples the server's and the load generator's CPU and RSS twice a second."""

    def __init__(self, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.samples: list[Sample] = []
        self._server = psutil.Process(server_pid)
        self._load: Any = None
        self._stop_event = threading.Event()
        self._server.cpu_percent(None)
        psutil.cpu_percent(None)

    def track_load(self, pid: int) -> None:
        """Also sample the load generator process."""
        process = psutil.Process(pid)
        process.cpu_percent(None)
        self._load = process

    def _load_cpu(self) -> float | None:
        if self._load is None:
            return None
        try:
            return float(self._load.cpu_percent(None))
        except psutil.Error:
            return None

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_SECONDS):
            try:
                cpu, rss = self._server.cpu_percent(None), self._server.memory_info().rss
            except psutil.Error:
                return
            sample = Sample(time.monotonic(), cpu, rss, self._load_cpu(), psutil.cpu_percent(None))
            self.samples.append(sample)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()
        self.join(timeout=5)

    def usage(self, start: float, end: float) -> dict[str, Any]:
        """CPU and memory over [start, end] (monotonic times)."""
        window = [s for s in self.samples if start + SAMPLE_SECONDS / 2 <= s.at <= end + 0.05]
        if not window:
            return {}
        load = [s.load_cpu for s in window if s.load_cpu is not None]
        return {
            "server_cpu_percent_mean": _mean([s.server_cpu for s in window]),
            "server_cpu_percent_max": round(max(s.server_cpu for s in window), 1),
            "server_rss_mb_max": round(max(s.server_rss for s in window) / 2**20, 1),
            "load_generator_cpu_percent_mean": _mean(load) if load else None,
            "load_generator_cpu_percent_max": round(max(load), 1) if load else None,
            "machine_cpu_percent_mean": _mean([s.system_cpu for s in window]),
            "samples": len(window),
        }


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 1)


@dataclass
class LoadOutcome:
    """What the load generator reported, and when each of its phases ran (monotonic)."""

    result: dict[str, Any] | None = None
    error: str | None = None
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)


def _handle(line: bytes, outcome: LoadOutcome, starts: dict[str, float]) -> None:
    message = orjson.loads(line)
    kind = message["event"]
    if kind == "log":
        log(f"  {message['message']}")
    elif kind == "phase" and message["state"] == "start":
        starts[message["phase"]] = time.monotonic()
    elif kind == "phase":
        outcome.phases[message["phase"]] = (starts[message["phase"]], time.monotonic())
    elif kind == "result":
        outcome.result = message["result"]
    elif kind == "error":
        outcome.error = message["message"]
        log(message.get("traceback", ""))


def run_load(spec: dict[str, Any], sampler: Sampler, timeout: float) -> LoadOutcome:
    """Run `python -m bench.loadgen` with `spec` in its own process and collect its report."""
    command = [sys.executable, "-m", "bench.loadgen", orjson.dumps(spec).decode()]
    outcome, starts = LoadOutcome(), dict[str, float]()
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=_load_env()) as process:  # noqa: S603
        sampler.track_load(process.pid)
        assert process.stdout is not None
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            for line in process.stdout:
                _handle(line, outcome, starts)
        finally:
            killer.cancel()
        code = process.wait()
    if outcome.result is None and outcome.error is None:
        outcome.error = f"load generator exited with {code} without a result"
    return outcome


def _load_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


RESULTS = Path(__file__).resolve().parent / "results"


def emit(name: str, result: dict[str, Any]) -> int:
    """Write a standalone bench's JSON to bench/results/NAME.json and to stdout; exit 0."""
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_bytes(text)
    sys.stdout.write(text.decode() + "\n")
    return 0
