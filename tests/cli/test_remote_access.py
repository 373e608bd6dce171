"""`signalbeam remote-access show|enable|disable` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.cli.runner import Cli, admin_request
from tests.conftest import LiveServer

OFF = "remote access: off (logs only; an admin turns it on with `signalbeam remote-access enable`)"


def _cli(tmp_path: Path, server: LiveServer, token: str) -> Cli:
    return Cli(tmp_path / token[:12], SIGNALBEAM_SERVER=server.url, SIGNALBEAM_TOKEN=token)


def _user_token(server: LiveServer, name: str, role: str) -> str:
    user = {"username": name, "role": role, "password": "correct horse battery"}
    admin_request(server.url, server.admin_token, "POST", "/api/v1/users", user)
    login = {"username": name, "password": "correct horse battery"}
    token: str = httpx.post(f"{server.url}/api/v1/auth/login", json=login).json()["token"]
    return token


def test_show_enable_disable_round_trip(live_server: LiveServer, tmp_path: Path) -> None:
    cli = _cli(tmp_path, live_server, live_server.admin_token)
    assert cli.ok("remote-access", "show") == OFF + "\n"
    limited = cli.ok(
        "remote-access", "enable", "--allow", "uptime", "--allow", "systemctl status *"
    )
    assert limited.splitlines() == [
        "remote access: on, exec limited to these commands (no shell, copy or forward):",
        "  uptime",
        "  systemctl status *",
    ]
    assert json.loads(cli.ok("remote-access", "show", "--json")) == {
        "enabled": True,
        "exec_allow": ["uptime", "systemctl status *"],
    }
    anything = cli.ok("remote-access", "enable")
    assert anything.strip() == (
        "remote access: on (operators may exec any command, open shells, copy, forward)"
    )
    assert cli.ok("remote-access", "disable") == OFF + "\n"
    policy = admin_request(live_server.url, live_server.admin_token, "GET", "/api/v1/remote-access")
    assert policy == {"enabled": False, "exec_allow": []}


def test_only_admins_change_the_policy(live_server: LiveServer, tmp_path: Path) -> None:
    operator = _cli(tmp_path, live_server, _user_token(live_server, "otto", "operator"))
    refused, shown = operator.run_all(["remote-access", "enable"], ["remote-access", "show"])
    assert refused.error_line.startswith("error: this needs the admin role; you are operator.")
    assert shown.code == 0 and shown.out == OFF + "\n"
