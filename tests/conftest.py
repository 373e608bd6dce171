"""Fixtures: a real database per test (SQLite and PostgreSQL), the app, clients, a live server."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from xdist.scheduler import LoadGroupScheduling

from signalbeam.server.app import create_app
from signalbeam.server.runtime import Runtime
from signalbeam.server.settings import ServerSettings
from tests.components import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, free_port, need, reachable
from tests.zygote import ForkedProcess, zygote_socket

ENGINE_FIXTURES = "from tests.engine import"


@functools.cache
def _uses_the_engine(module: Path) -> bool:
    return module.suffix == ".py" and ENGINE_FIXTURES in module.read_text()


class EngineOnOneWorker(LoadGroupScheduling):  # type: ignore[misc]  # xdist has no types
    """xdist's loadgroup, grouping by module text, since pytest 9 ignores xdist_group marks.

    Every module that uses the container engine goes to one worker: they share one Podman
    service, its image store and host ports such as 8080. Each other test is its own unit.
    """

    def _split_scope(self, nodeid: str) -> str:
        module = self.config.rootpath / nodeid.split("::", 1)[0]
        return "engine" if _uses_the_engine(module) else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return EngineOnOneWorker(config, log) if config.getvalue("dist") == "loadgroup" else None


# Long tests (browsers, real agents, containers) first, thousands of quick ones last: the
# quick ones then fill the workers' ends evenly instead of three browser tests racing alone.
FIRST_TO_LAST = ("test_api_fuzz.py", "web", "chaos", "agent", "cli", "sim", "server")


def _rank(item: pytest.Item) -> int:
    part = item.nodeid.split("/")[1].split("::")[0]
    if part in FIRST_TO_LAST:
        return FIRST_TO_LAST.index(part)
    # tests/test_*.py (API tests, mostly in-process), then domain and protocol (pure, quick).
    return len(FIRST_TO_LAST) + (0 if part.endswith(".py") else 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)


async def _admin_connection() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, database="postgres"
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database on each backend; PostgreSQL ones are created and dropped here."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    need(
        reachable(POSTGRES_HOST, POSTGRES_PORT),
        f"PostgreSQL not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}",
    )
    name = f"signalbeam_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ServerSettings:
    """Server settings on a temp data dir and the parametrised database."""
    return ServerSettings(data_dir=tmp_path / "data", database_url=database_url, mdns=False)


@pytest.fixture
async def app(settings: ServerSettings) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan running (migrations, first admin, workers)."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    """The running app's runtime (database, bus, ingestor)."""
    value: Runtime = app.state.runtime
    return value


@pytest.fixture
def admin_token(app: FastAPI) -> str:
    """The first admin's API token, as printed on first start."""
    token: str | None = app.state.startup.admin_token
    assert token is not None
    return token


@pytest.fixture
async def client(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process, authenticated as the first admin."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client (devices bring their own credential header)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class LiveServer:
    """A real `signalbeam server` process on loopback."""

    url: str
    admin_token: str
    data_dir: Path
    process: subprocess.Popen[str] | ForkedProcess
    output: list[str]
    reader: threading.Thread


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[str] | ForkedProcess:
    zygote = zygote_socket()
    if zygote is not None:
        # Same command line, environment and directory, minus the 1.5 s of imports.
        return ForkedProcess(zygote, command[3:], env, os.getcwd())
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def start_server(
    data_dir: Path,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> LiveServer:
    """Start `signalbeam server` (on `port`, else a free one) and wait until it listens."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "signalbeam",
        "server",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
    ]
    process = _spawn(command + (extra or []), {**os.environ, **(env or {})})
    output: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        # Keep reading so a chatty server never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Uvicorn running on" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    ready.wait(timeout=60)
    if process.poll() is not None or not any("Uvicorn running on" in line for line in output):
        process.kill()
        raise AssertionError("server did not start:\n" + "".join(output))
    token = (data_dir / "admin-token").read_text().strip()
    return LiveServer(f"http://127.0.0.1:{port}", token, data_dir, process, output, reader)


def stop_server(server: LiveServer, sig: signal.Signals = signal.SIGTERM) -> str:
    """Stop the server (SIGTERM is a clean shutdown, SIGKILL a crash); return all its output."""
    server.process.send_signal(sig)
    server.process.wait(timeout=60)
    server.reader.join(timeout=10)
    assert server.process.stdout is not None
    server.process.stdout.close()
    return "".join(server.output)


@pytest.fixture
def live_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A real server process on a free loopback port, with the parametrised database."""
    server = start_server(tmp_path / "server", ["--database-url", database_url])
    yield server
    stop_server(server)
