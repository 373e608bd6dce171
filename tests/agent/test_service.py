"""The systemd unit: what it says, and where `install-service` writes it.

systemd does not run in the test environment, so `systemctl` is replaced by a recorder;
everything else (the unit text, the file and its mode, the command line) is real.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from signalbeam.agent.service import install, unit_text


def test_unit_runs_the_agent_restarts_it_and_respects_a_refusal() -> None:
    text = unit_text(["/usr/bin/signalbeam-agent"], Path("/var/lib/signalbeam-agent"))
    assert "ExecStart=/usr/bin/signalbeam-agent run --state-dir /var/lib/signalbeam-agent" in text
    assert "Restart=always" in text
    assert "RestartPreventExitStatus=3" in text
    assert "StateDirectory=signalbeam-agent" in text
    assert "WantedBy=multi-user.target" in text
    assert "After=network-online.target" in text


def test_install_writes_the_unit_then_reloads_and_enables(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def record(args: Sequence[str]) -> None:
        calls.append(list(args))

    path = install("[Unit]\n", tmp_path / "units", run=record)
    assert path.read_text() == "[Unit]\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert calls == [["daemon-reload"], ["enable", "--now", "signalbeam-agent"]]


def test_print_shows_the_unit_and_changes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "signalbeam.agent", "install-service", "--print"),
            *("--state-dir", str(tmp_path / "state"), "--unit-dir", str(tmp_path / "units")),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"run --state-dir {tmp_path / 'state'}" in result.stdout
    assert result.stdout.startswith("[Unit]")
    assert not (tmp_path / "units").exists()
