"""`signalbeam sim` as a person runs it: a subprocess that prints a summary and stops cleanly.

These exercise the command's process behaviour (signals, exit codes, output), which does not
depend on the database, so they share one SQLite server; the fleet tests cover both backends.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.lines import Lines

SIM = [sys.executable, "-m", "signalbeam", "sim"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite server for every CLI test in this module."""
    live = start_server(tmp_path_factory.mktemp("sim-cli") / "server", ["--no-mdns"])
    yield live
    stop_server(live)


@pytest.fixture
def token(server: LiveServer) -> str:
    """A fresh enrollment token."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    response = httpx.post(
        f"{server.url}/api/v1/enrollment-tokens", json={"labels": {}}, headers=headers
    )
    assert response.status_code == 201, response.text
    value: str = response.json()["token"]
    return value


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGNALBEAM_")}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIM, *args], capture_output=True, text=True, timeout=90, env=_env(), check=False
    )


def test_runs_for_a_duration_prints_a_summary_and_reuses_identities(
    server: LiveServer, token: str, tmp_path: Path
) -> None:
    state = tmp_path / "sim.json"
    common = ["--server", server.url, "--token", token, "--devices", "5", "--interval", "1s"]
    first = _run(*common, "--duration", "3s", "--state-file", str(state), "--labels", "env=cli")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "simulation summary" in first.stdout
    assert "devices:        5 (5 enrolled, 0 from the state file, 0 stopped)" in first.stdout
    assert ", 0 failed" in first.stdout.splitlines()[2]
    assert stat.S_IMODE(state.stat().st_mode) == 0o600

    again = _run(*common, "--duration", "2s", "--state-file", str(state), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["enrolled"], summary["reused_identities"]) == (0, 5)
    assert summary["syncs_ok"] >= 5 and summary["syncs_failed"] == 0


def test_a_bad_token_is_one_error_line(server: LiveServer, tmp_path: Path) -> None:
    result = _run(
        "--server", server.url, "--token", "sbe_wrong", "--devices", "2",
        "--state-file", str(tmp_path / "sim.json"),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: the server refused to enroll sim-0000")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_sigusr1_toggles_devices_and_sigint_stops_cleanly(
    server: LiveServer, token: str, tmp_path: Path
) -> None:
    with subprocess.Popen(
        [*SIM, "--server", server.url, "--token", token, "--devices", "5", "--interval", "1s",
         "--offline-fraction", "0.4", "--state-file", str(tmp_path / "sim.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    ) as process:  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        errors = Lines(process.stderr)
        try:
            errors.wait_for("simulating 5 devices")
            process.send_signal(signal.SIGUSR1)
            assert "SIGUSR1: 2 devices offline" in errors.wait_for("SIGUSR1")
            process.send_signal(signal.SIGUSR1)
            assert "SIGUSR1: 2 devices back online" in errors.wait_for("SIGUSR1")
            process.send_signal(signal.SIGINT)
            out = process.stdout.read()
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
            errors.rest()
    assert "simulation summary" in out and "devices:        5" in out
    assert not any("Traceback" in line for line in errors.seen), "\n".join(errors.seen)


def test_a_watch_held_longer_than_the_server_allows_is_one_error_line(tmp_path: Path) -> None:
    result = _run(
        "--server", "http://127.0.0.1:9", "--token", "sbe_x", "--devices", "1", "--watch",
        "--watch-timeout", "90s", "--state-file", str(tmp_path / "sim.json"),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: --watch-timeout is at most 60s"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
