"""The device owner's switch: `remote_access` in agent.toml, set by `install-service`."""

from __future__ import annotations

from pathlib import Path

from signalbeam.agent.config import load, write_flag
from signalbeam.agent.main import parser


def test_write_flag_creates_replaces_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    write_flag(path, "remote_access", True)
    assert load({"state_dir": str(tmp_path)}, environ={}).remote_access is True
    path.write_text('server = "http://10.0.0.5:8420"\nremote_access = true\nmax_sessions = 2\n')
    write_flag(path, "remote_access", False)
    assert path.read_text() == (
        'server = "http://10.0.0.5:8420"\nremote_access = false\nmax_sessions = 2\n'
    )
    settings = load({"state_dir": str(tmp_path)}, environ={})
    assert (settings.remote_access, settings.max_sessions) == (False, 2)


def test_the_environment_still_wins_over_the_file(tmp_path: Path) -> None:
    write_flag(tmp_path / "agent.toml", "remote_access", True)
    environ = {"SIGNALBEAM_AGENT_REMOTE_ACCESS": "false"}
    assert load({"state_dir": str(tmp_path)}, environ=environ).remote_access is False


def test_install_service_takes_remote_access_both_ways() -> None:
    line = parser()
    assert line.parse_args(["install-service", "--remote-access"]).remote_access is True
    assert line.parse_args(["install-service", "--no-remote-access"]).remote_access is False
    assert line.parse_args(["install-service"]).remote_access is None
