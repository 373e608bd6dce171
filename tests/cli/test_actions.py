"""`signalbeam cordon` and `uncordon` as an operator runs them, against a real server."""

from __future__ import annotations

import json

import httpx

from tests.cli.runner import Cli, enroll, sync
from tests.conftest import LiveServer


def _online(server: LiveServer, *devices: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    response = httpx.post(f"{server.url}/api/v1/enrollment-tokens", json={}, headers=headers)
    token = response.json()["token"]
    for device_id, site in devices:
        credential = enroll(server.url, token, device_id, {"site": site})
        assert sync(server.url, credential).status_code == 200


def test_cordon_plans_then_marks_devices_everywhere(live_server: LiveServer, cli: Cli) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    _online(live_server, ("pi-1", "oslo"), ("pi-2", "bergen"))
    planned = cli.ok("cordon", "--selector", "site=oslo", "--plan")
    assert planned.startswith("cordon would touch:")
    assert "pi-1" in planned and "planned" in planned and "pi-2" not in planned
    assert "cordoned" not in cli.ok("devices", "ls")
    cli.ok("cordon", "pi-1")
    listing = cli.ok("devices", "ls")
    assert [line.split()[0] for line in listing.splitlines() if "cordoned" in line] == ["pi-1"]
    assert "online cordoned" in cli.ok("devices", "show", "pi-1")
    again = json.loads(cli.ok("cordon", "pi-1", "--json"))
    assert again["devices"] == [
        {"device_id": "pi-1", "status": "unchanged", "detail": "already cordoned"}
    ]
    cli.ok("uncordon", "--selector", "site")
    assert "cordoned" not in cli.ok("devices", "ls")


def test_cordon_needs_one_target(live_server: LiveServer, cli: Cli) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    both = cli.run("cordon", "pi-1", "--group", "lab")
    assert both.error_line == "error: name devices, or give exactly one of --group or --selector"
    missing = cli.run("cordon", "pi-404")
    assert "pi-404" in missing.error_line


def test_rollback_plans_per_device(live_server: LiveServer, cli: Cli) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    _online(live_server, ("pi-1", "oslo"))
    planned = json.loads(cli.ok("rollback", "--selector", "site=oslo", "--plan", "--json"))
    assert planned["devices"] == [
        {"device_id": "pi-1", "status": "unchanged", "detail": "no earlier bundle version"}
    ]
