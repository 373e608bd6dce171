"""Real components for tests: skip with a reason on a laptop, fail in CI (SIGNALBEAM_REQUIRE_ALL=1)."""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_ALL = os.environ.get("SIGNALBEAM_REQUIRE_ALL") == "1"
POSTGRES_HOST = os.environ.get("SIGNALBEAM_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("SIGNALBEAM_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("SIGNALBEAM_TEST_PG_USER", "postgres")


def reachable(host: str, port: int) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(available: bool, reason: str) -> None:
    """Skip when a component is missing, or fail when CI demands every component."""
    if available:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (SIGNALBEAM_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
