"""An operator's day with the real CLI against a real server: log in, onboard, label, group, retire."""

from __future__ import annotations

import json
import re
import stat

from tests.cli.runner import Cli, Result, enroll, gather, sync
from tests.conftest import LiveServer

ANSI = re.compile(r"\x1b\[[0-9;]*m")
GREEN = "\x1b[32m"


def _login(cli: Cli, server: LiveServer) -> None:
    out = cli.ok("login", "--server", server.url + "/", "--token", server.admin_token)
    assert out.strip() == f"Logged in to {server.url} as admin (admin)"
    config = cli.config_dir / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert server.admin_token in config.read_text()


def _create_token_and_make_mistakes(cli: Cli, server: LiveServer) -> str:
    """Create an enrollment token; meanwhile a wrong token and a bad selector get one-line errors."""
    wrong = Cli(cli.config_dir, SIGNALBEAM_SERVER=server.url, SIGNALBEAM_TOKEN="sbu_wrong")
    created, bad_token, bad_selector = gather(
        cli.start("tokens", "create", "--label", "site=oslo", "--max-uses", "2", "--expires", "1h"),
        wrong.start("devices", "ls"),
        cli.start("devices", "ls", "--selector", "site in (oslo"),
    )
    assert "API token not recognised" in bad_token.error_line
    assert bad_selector.error_line.startswith('error: selector "site in (oslo" is not valid')
    assert 'missing ")"' in bad_selector.error_line
    lines = created.out.splitlines()
    assert lines[0].startswith("Enrollment token") and "shown once" in lines[0]
    token = lines[1].strip()
    assert f"--token {token}" in created.out and "signalbeam-agent register" in created.out
    return token


def _rows(table: str) -> dict[str, str]:
    """Table rows by their first column, without the header and the footer."""
    return {line.split()[0]: line for line in table.splitlines()[1:-1]}


def _check_listings(listed: Result, selected: Result, new: Result) -> None:
    assert GREEN + "online" in listed.out, listed.out
    table = ANSI.sub("", listed.out)
    rows = _rows(table)
    assert list(rows) == ["pi-002", "pi-001"]
    assert "online" in rows["pi-001"] and "env=prod,site=oslo" in rows["pi-001"]
    assert "10%" in rows["pi-001"]
    assert "new" in rows["pi-002"] and "never" in rows["pi-002"]
    assert table.splitlines()[-1] == "showing 1-2 of 2"
    page = json.loads(selected.out)
    assert [d["device_id"] for d in page["items"]] == ["pi-001"] and page["total"] == 1
    assert list(_rows(ANSI.sub("", new.out))) == ["pi-002"]


def _enroll_two_devices(server: LiveServer, token: str) -> str:
    """pi-001 enrolls and syncs (online); pi-002 enrolls and stays silent (new)."""
    credential = enroll(server.url, token, "pi-001", {"env": "prod"})
    assert sync(server.url, credential).status_code == 200
    enroll(server.url, token, "pi-002", {"env": "dev"})
    return credential


def _list_group_and_read_events(cli: Cli) -> None:
    listed, selected, new, created, events = cli.run_all(
        ["devices", "ls", "--sort", "-name"],
        ["devices", "ls", "--selector", "env=prod,site in (oslo,bergen)", "--json"],
        ["devices", "ls", "--status", "new"],
        ["groups", "create", "lab", "--description", "bench boards"],
        ["events", "ls", "--device", "pi-001"],
        env={"FORCE_COLOR": "1"},
    )
    _check_listings(listed, selected, new)
    assert "Created static group lab" in created.out
    assert "device.registered" in events.out and "device.online" in events.out


def _label_and_add_members(cli: Cli) -> None:
    labelled, added, declined = cli.run_all(
        ["devices", "label", "pi-001", "tier=gold", "env-"],
        ["groups", "add", "lab", "pi-001", "pi-002"],
        ["devices", "rm", "pi-002"],
        stdin="n\n",
    )
    assert labelled.out.strip() == "Labels of pi-001: site=oslo,tier=gold"
    assert added.out.strip() == "Added pi-001, pi-002 to lab; it has 2 devices."
    assert "cancelled; pi-002 was not decommissioned" in declined.error_line


def _check_device_and_group(cli: Cli) -> None:
    shown, group, groups = cli.run_all(
        ["devices", "show", "pi-001"], ["groups", "show", "lab"], ["groups", "ls"]
    )
    assert "tier=gold" in shown.out and "env=prod" not in shown.out
    assert "device.labels_changed" in shown.out and "lab" in shown.out
    assert re.search(r"cpu\s+10%", shown.out), shown.out
    assert "bench boards" in group.out
    assert list(_rows(group.out.split("\n\n")[-1])) == ["pi-001", "pi-002"]
    assert re.search(r"lab\s+static\s+-\s+2\s+bench boards", groups.out), groups.out


def test_operator_onboards_labels_groups_and_retires_devices(
    live_server: LiveServer, cli: Cli
) -> None:
    _login(cli, live_server)
    token = _create_token_and_make_mistakes(cli, live_server)
    credential = _enroll_two_devices(live_server, token)
    _list_group_and_read_events(cli)
    _label_and_add_members(cli)
    _check_device_and_group(cli)

    retired = cli.ok("devices", "rm", "pi-001", "--yes")
    assert retired.startswith("Decommissioned pi-001")
    assert sync(live_server.url, credential).status_code == 401
