"""Fixtures for dashboard tests: a real server, Debian's chromium driven by Playwright, screenshots."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.components import REQUIRE_ALL, need
from tests.conftest import LiveServer, start_server, stop_server

# Debian's package; another build can be named with SIGNALBEAM_CHROMIUM (never a downloaded one).
CHROMIUM = Path(os.environ.get("SIGNALBEAM_CHROMIUM", "/usr/bin/chromium"))
# Flags for a quiet, sandbox-less headless chromium that never phones home during tests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_PASSWORD = "correct horse battery"
PLAYWRIGHT_MISSING = (
    "Playwright for Python is missing; install the dev extras: pip install -e '.[dev]'"
)
# Outside git (listed in .gitignore), so reviewers can look at the pages a run produced.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


def browser_available() -> None:
    """Skip (or fail under SIGNALBEAM_REQUIRE_ALL=1) without chromium or Playwright."""
    need(CHROMIUM.exists(), f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    need(importlib.util.find_spec("playwright") is not None, PLAYWRIGHT_MISSING)


def require_playwright() -> None:
    """At import time of a browser test module: skip the module, or fail it in CI."""
    if importlib.util.find_spec("playwright") is not None:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{PLAYWRIGHT_MISSING} (SIGNALBEAM_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(PLAYWRIGHT_MISSING, allow_module_level=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests save a screenshot of each main page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A real `signalbeam server` with fast syncs on each database, for a browser to talk to."""
    browser_available()
    flags = ["--no-mdns", "--sync-interval", "2s", "--database-url", database_url]
    live = start_server(tmp_path / "server", flags)
    yield live
    stop_server(live)


@pytest.fixture
async def api(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """The management API as the first admin, whose password the fixture sets."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        response = await client.put(
            "/api/v1/users/admin/password", json={"password": ADMIN_PASSWORD}
        )
        assert response.status_code == 204, response.text
        yield client


@pytest.fixture
async def device_api(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client for the device API (devices bring their own credential)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client
