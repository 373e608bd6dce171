"""Users, password login, API tokens, and what a person sees when something is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx

from tests.cli.runner import Cli, gather
from tests.components import free_port
from tests.conftest import LiveServer

PASSWORD = "correct horse battery\n"


def _as_admin(cli: Cli, server: LiveServer) -> Cli:
    return Cli(cli.config_dir, SIGNALBEAM_SERVER=server.url, SIGNALBEAM_TOKEN=server.admin_token)


def _me(server: LiveServer, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/api/v1/me", headers=headers).status_code


def _stored_token(config_dir: Path) -> str:
    token: str = tomllib.loads((config_dir / "config.toml").read_text())["token"]
    return token


def test_admin_adds_a_user_who_logs_in_with_a_password(live_server: LiveServer, cli: Cli) -> None:
    admin = _as_admin(cli, live_server)
    created, api_token, bad_login = gather(
        admin.start("users", "create", "bob", "--role", "operator", "--password-stdin"),
        admin.start("api-tokens", "create", "ci", "--expires", "7d"),
        cli.start("login", "--server", live_server.url, "--token", "sbu_wrong"),
        stdin=PASSWORD,
    )
    assert created.out.startswith("Created operator bob")
    assert "expires in 7d" in api_token.out and _me(live_server, api_token.out.split()[-1]) == 200
    assert "did not accept this API token" in bad_login.error_line
    assert not (cli.config_dir / "config.toml").exists()

    out = cli.ok(
        "login",
        "--server",
        live_server.url,
        "--username",
        "bob",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert out.strip() == f"Logged in to {live_server.url} as bob (operator)"
    token = _stored_token(cli.config_dir)
    tokens, forbidden, users = cli.run_all(
        ["api-tokens", "ls"],
        ["users", "create", "eve", "--role", "admin", "--password-stdin"],
        ["users", "ls"],
        stdin=PASSWORD,
    )
    assert "cli on" in tokens.out and "active" in tokens.out
    assert "this needs the admin role; you are operator" in forbidden.error_line
    assert "bob" in users.out and "operator" in users.out

    assert cli.ok("logout").strip() == f"Logged out of {live_server.url}"
    assert _me(live_server, token) == 401


def test_errors_without_a_server_are_one_line(cli: Cli) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    unreachable = Cli(cli.config_dir, SIGNALBEAM_SERVER=down, SIGNALBEAM_TOKEN="sbu_any")
    offline, logged_out, typo, bad_label = gather(
        unreachable.start("devices", "ls"),
        cli.start("devices", "ls"),
        cli.start("devices", "ls", "--limit", "lots"),
        cli.start("devices", "label", "pi-001", "site"),
    )
    assert offline.error_line == (
        f"error: cannot reach the SignalBeam server at {down} (connection refused); "
        "is it running? (signalbeam server)"
    )
    assert logged_out.error_line == (
        "error: not logged in; run signalbeam login --server URL --token TOKEN"
    )
    assert "'--limit'" in typo.error_line and typo.code == 2
    assert 'label "site" must look like key=value' in bad_label.error_line
