"""An operator's day with the real CLI against a real server: log in, onboard, label, group, retire."""

from __future__ import annotations

import json
import re
import stat

from tests.cli.runner import Cli, enroll, sync
from tests.conftest import LiveServer

ANSI = re.compile(r"\x1b\[[0-9;]*m")
GREEN = "\x1b[32m"


def _login(cli: Cli, server: LiveServer) -> None:
    out = cli.ok("login", "--server", server.url + "/", "--token", server.admin_token)
    assert out.strip() == f"Logged in to {server.url} as admin (admin)"
    config = cli.config_dir / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert server.admin_token in config.read_text()


def _enroll_two_devices(cli: Cli, server: LiveServer) -> str:
    """Create a token with the CLI, enroll pi-001 (synced, online) and pi-002 (never synced)."""
    out = cli.ok("tokens", "create", "--label", "site=oslo", "--max-uses", "2", "--expires", "1h")
    lines = out.splitlines()
    assert lines[0].startswith("Enrollment token") and "shown once" in lines[0]
    token = lines[1].strip()
    assert f"--token {token}" in out and "signalbeam-agent register" in out
    credential = enroll(server.url, token, "pi-001", {"env": "prod"})
    assert sync(server.url, credential).status_code == 200
    enroll(server.url, token, "pi-002", {"env": "dev"})
    return credential


def _rows(table: str) -> dict[str, str]:
    return {line.split()[0]: line for line in table.splitlines()[1:-1]}


def _check_listings(cli: Cli) -> None:
    colour, by_selector, by_status, as_json = cli.run_all(
        ["devices", "ls", "--sort", "-name"],
        ["devices", "ls", "--selector", "env=prod,site in (oslo,bergen)"],
        ["devices", "ls", "--status", "new"],
        ["devices", "ls", "--json"],
        env={"FORCE_COLOR": "1"},
    )
    assert GREEN + "online" in colour.out, colour.out
    table = ANSI.sub("", colour.out)
    assert list(_rows(table)) == ["pi-002", "pi-001"]
    online, new = _rows(table)["pi-001"], _rows(table)["pi-002"]
    assert "online" in online and "env=prod,site=oslo" in online and "10%" in online
    assert "new" in new and "never" in new and "env=dev,site=oslo" in new
    assert table.splitlines()[-1] == "showing 1-2 of 2"
    assert list(_rows(ANSI.sub("", by_selector.out))) == ["pi-001"]
    assert list(_rows(ANSI.sub("", by_status.out))) == ["pi-002"]
    page = json.loads(as_json.out)
    assert page["total"] == 2
    assert {d["device_id"]: d["presence"] for d in page["items"]} == {"pi-001": "online", "pi-002": "new"}


def _check_labels_groups_and_events(cli: Cli) -> None:
    labelled, static, dynamic, events, declined = cli.run_all(
        ["devices", "label", "pi-001", "tier=gold", "env-"],
        ["groups", "create", "lab", "--description", "bench boards"],
        ["groups", "create", "gold", "--selector", "tier=gold"],
        ["events", "ls", "--device", "pi-001"],
        ["devices", "rm", "pi-002"],
        stdin="n\n",
    )
    assert labelled.out.strip() == "Labels of pi-001: site=oslo,tier=gold"
    assert "Created static group lab" in static.out
    assert "Created dynamic group gold (tier=gold)" in dynamic.out
    assert "device.registered" in events.out and "device.online" in events.out
    assert "cancelled; pi-002 was not decommissioned" in declined.error_line

    shown, added = cli.run_all(["devices", "show", "pi-001"], ["groups", "add", "lab", "pi-001", "pi-002"])
    assert "tier=gold" in shown.out and "env=prod" not in shown.out
    assert "device.labels_changed" in shown.out and "Debian 12" in shown.out
    assert re.search(r"cpu\s+10%", shown.out), shown.out
    assert added.out.strip() == "Added pi-001, pi-002 to lab; it has 2 devices."

    group, groups = cli.run_all(["groups", "show", "lab"], ["groups", "ls"])
    assert "bench boards" in group.out and list(_rows(group.out.split("\n\n")[-1])) == ["pi-001", "pi-002"]
    assert re.search(r"gold\s+dynamic\s+tier=gold\s+1", groups.out), groups.out
    assert re.search(r"lab\s+static\s+-\s+2", groups.out), groups.out


def test_operator_onboards_labels_groups_and_retires_devices(live_server: LiveServer, cli: Cli) -> None:
    _login(cli, live_server)
    assert cli.ok("devices", "ls").strip() == "showing 0 of 0"
    credential = _enroll_two_devices(cli, live_server)
    _check_listings(cli)
    _check_labels_groups_and_events(cli)

    retired = cli.ok("devices", "rm", "pi-001", "--yes")
    assert retired.startswith("Decommissioned pi-001")
    assert sync(live_server.url, credential).status_code == 401
