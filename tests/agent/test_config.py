"""Settings: defaults < agent.toml < SIGNALBEAM_AGENT_* < flags, with errors that name the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalbeam.agent.config import ConfigError, default_state_dir, load


def write_toml(state_dir: Path, text: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "agent.toml").write_text(text)


def test_defaults(tmp_path: Path) -> None:
    settings = load({"state_dir": tmp_path}, environ={})
    assert settings.server is None
    assert settings.interval == 15.0
    assert settings.outbox_max_samples == 10_000
    assert settings.mdns_interface == []
    assert settings.log_level == "info"


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'server = "http://file:8420"\ninterval = "20s"\nlog_level = "debug"\n'
        'outbox_max_samples = 50\nmdns_interface = ["10.0.0.1"]\n',
    )
    env = {
        "SIGNALBEAM_AGENT_STATE_DIR": str(tmp_path),
        "SIGNALBEAM_AGENT_SERVER": "http://env:8420/",
        "SIGNALBEAM_AGENT_INTERVAL": "0.5",
    }
    settings = load({"interval": "2m"}, environ=env)
    assert settings.state_dir == tmp_path
    assert settings.server == "http://env:8420", "env beats the file; the slash is trimmed"
    assert settings.interval == 120.0, "a flag beats the environment"
    assert settings.log_level == "debug", "the file beats the default"
    assert settings.outbox_max_samples == 50
    assert settings.mdns_interface == ["10.0.0.1"]


def test_environment_lists_and_all(tmp_path: Path) -> None:
    env = {"SIGNALBEAM_AGENT_MDNS_INTERFACE": "127.0.0.1, 10.0.0.2"}
    assert load({"state_dir": tmp_path}, environ=env).mdns_interface == ["127.0.0.1", "10.0.0.2"]
    env = {"SIGNALBEAM_AGENT_MDNS_INTERFACE": "all"}
    assert load({"state_dir": tmp_path}, environ=env).mdns_interface == []


def test_file_in_the_default_place_may_move_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    write_toml(tmp_path / "signalbeam-agent", f'state_dir = "{tmp_path / "elsewhere"}"\n')
    assert load({}, environ={}).state_dir == tmp_path / "elsewhere"
    # An explicit state dir (environment or flag) is where agent.toml is read and used.
    assert load({}, environ={"SIGNALBEAM_AGENT_STATE_DIR": "/x"}).state_dir == Path("/x")


def test_bad_values_name_the_setting_and_where_it_came_from(tmp_path: Path) -> None:
    env = {"SIGNALBEAM_AGENT_INTERVAL": "soon"}
    with pytest.raises(ConfigError, match=r"interval \(environment\).*not a duration"):
        load({"state_dir": tmp_path}, environ=env)
    with pytest.raises(ConfigError, match=r"server \(command line\).*http://host:8420"):
        load({"state_dir": tmp_path, "server": "10.0.0.5"}, environ={})
    write_toml(tmp_path, "outbox_max_samples = 0\n")
    with pytest.raises(ConfigError, match=r"outbox_max_samples \(.*agent.toml\)"):
        load({"state_dir": tmp_path}, environ={})


def test_reboot_command_and_boot_id_file(tmp_path: Path) -> None:
    defaults = load({"state_dir": tmp_path}, environ={})
    assert defaults.reboot_command == "systemctl reboot"
    assert defaults.boot_id_file == Path("/proc/sys/kernel/random/boot_id")
    write_toml(tmp_path, 'reboot_command = "/sbin/shutdown -r now"\nboot_id_file = "~/boot"\n')
    chosen = load({"state_dir": tmp_path}, environ={})
    assert chosen.reboot_command == "/sbin/shutdown -r now"
    assert chosen.boot_id_file == Path("~/boot").expanduser()
    env = {"SIGNALBEAM_AGENT_REBOOT_COMMAND": "reboot 'now"}
    with pytest.raises(ConfigError, match=r"reboot_command \(environment\): is not a command line"):
        load({"state_dir": tmp_path}, environ=env)


def test_unknown_and_broken_files_are_reported(tmp_path: Path) -> None:
    write_toml(tmp_path, 'sever = "http://typo:8420"\n')
    with pytest.raises(ConfigError, match="unknown setting sever"):
        load({"state_dir": tmp_path}, environ={})
    write_toml(tmp_path, "interval = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        load({"state_dir": tmp_path}, environ={})


def test_default_state_dir_depends_on_who_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/tmp/xdg-state")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert default_state_dir() == Path("/tmp/xdg-state/signalbeam-agent")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_state_dir() == Path("/var/lib/signalbeam-agent")
