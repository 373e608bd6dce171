"""`signalbeam sim --outage`: a block of the fleet goes silent on schedule and comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from signalbeam.sim.outages import Outage, OutageError, blocks, parse_outage
from tests.conftest import LiveServer, start_server, stop_server
from tests.lines import Lines

SIM = [sys.executable, "-m", "signalbeam", "sim"]


def test_an_outage_spec_reads_as_count_or_share_for_how_long_from_when() -> None:
    assert parse_outage("300:60s@2m") == Outage(count=300, share=None, lasts=60, at=120)
    assert parse_outage("25%:1m") == Outage(count=None, share=0.25, lasts=60, at=60)
    assert parse_outage("25%:1m").size(10_000) == 2500
    for bad, says in (
        ("300", r"COUNT:FOR\[@AT\]"),
        ("x:60s", "COUNT must be a number"),
        ("300:soon", "is not a duration"),
        ("0:60s", "COUNT must be a number"),
        ("150%:1m", "COUNT must be a number"),
    ):
        with pytest.raises(OutageError, match=says):
            parse_outage(bad)


def test_outages_take_consecutive_sites_wrapping_around() -> None:
    ids = [f"d{i}" for i in range(5)]
    two, three = Outage(2, None, 1.0), Outage(3, None, 1.0)
    assert blocks([two, three, two], ids) == [["d0", "d1"], ["d2", "d3", "d4"], ["d0", "d1"]]


def test_a_bad_outage_is_one_error_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALBEAM_")}
    done = subprocess.run(
        [*SIM, "--server", "http://127.0.0.1:9", "--token", "sbe_x", "--devices", "1",
         "--outage", "300:later"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "--outage '300:later'" in done.stderr and "not a duration" in done.stderr


@pytest.fixture
def quick_presence_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server that calls a device offline after 2 s of silence and sweeps twice a second."""
    flags = ["--no-mdns", "--sync-interval", "1s", "--offline-after-missed", "2"]
    server = start_server(tmp_path / "server", flags, env={"SIGNALBEAM_SWEEP_INTERVAL": "PT0.5S"})
    yield server
    stop_server(server)


def _presence(api: httpx.Client) -> dict[str, str]:
    response = api.get("/api/v1/devices", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {d["device_id"]: d["presence"] for d in response.json()["items"]}


def _until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g}s"
        time.sleep(0.1)


def test_silenced_devices_go_offline_on_the_server_and_come_back(
    quick_presence_server: LiveServer, tmp_path: Path
) -> None:
    server = quick_presence_server
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        made = api.post("/api/v1/enrollment-tokens", json={"labels": {"site": "oslo"}})
        assert made.status_code == 201, made.text
        command = [*SIM, "--server", server.url, "--token", made.json()["token"]]
        command += ["--devices", "6", "--interval", "0.5s"]
        command += ["--state-file", str(tmp_path / "sim.json"), "--outage", "2:4s@1s"]
        with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
            lines = Lines(process.stderr)
            try:
                said = lines.wait_for("outage:", timeout=30)
                assert "2 devices (sim-00000..sim-00001) silent for 4s" in said

                def only_the_site_offline() -> bool:
                    seen = _presence(api)
                    offline = sorted(d for d, status in seen.items() if status == "offline")
                    return offline == ["sim-00000", "sim-00001"] and len(seen) == 6

                _until(only_the_site_offline, "the two silenced devices offline", 10)
                assert "2 devices (sim-00000..sim-00001) back" in lines.wait_for("outage over")
                _until(
                    lambda: set(_presence(api).values()) == {"online"}, "the site back online", 10
                )
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
        assert process.returncode == 0, lines.rest()
        assert not any("Traceback" in line for line in lines.rest())
