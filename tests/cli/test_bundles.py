"""Bundles with the real CLI against a real server: push, inspect, diff, assign, and see the result."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from signalbeam.protocol.bundle_v1 import parse_bundle
from tests.cli.runner import COMMAND, Cli, enroll, sync
from tests.conftest import LiveServer

SPEC = """\
# The example from the README.
name: warehouse-monitor
version: 1.2.0
description: temperature and door sensors
containers:
  - name: monitor
    image: 127.0.0.1:5000/warehouse-monitor:1.2.0
    env: {LOG_LEVEL: info}
    ports: ["8080:8080"]
    health: {http: "http://127.0.0.1:8080/health", timeout: 60s}
"""
NEXT = SPEC.replace("1.2.0", "1.3.0").replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
PUSHED = re.compile(r"^pushed warehouse-monitor@1\.2\.0 \(sha256:[0-9a-f]{12}…\)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _push_and_make_mistakes(cli: Cli, tmp: Path) -> None:
    (tmp / "bundle.yaml").write_text(SPEC)
    (tmp / "broken.yaml").write_text(SPEC.replace("  - name: monitor", "  - name: [monitor"))
    (tmp / "typo.yaml").write_text(SPEC.replace("    image:", "    imagee:"))
    (tmp / "changed.json").write_text(
        json.dumps({**yaml.safe_load(SPEC), "description": "changed after the fact"})
    )
    first = cli.run("bundles", "push", "-f", str(tmp / "bundle.yaml"))
    assert PUSHED.match(first.out.strip()), first
    again, stdin, broken, typo, changed = cli.run_all(
        ["bundles", "push", "-f", str(tmp / "bundle.yaml")],
        ["bundles", "push", "-f", "-"],
        ["bundles", "push", "-f", str(tmp / "broken.yaml")],
        ["bundles", "push", "-f", str(tmp / "typo.yaml")],
        ["bundles", "push", "-f", str(tmp / "changed.json")],
        stdin=NEXT,
    )
    assert again.out.strip() == "already pushed" + first.out.strip().removeprefix("pushed")
    assert stdin.out.startswith("pushed warehouse-monitor@1.3.0 (sha256:"), stdin
    assert re.fullmatch(
        rf"error: {re.escape(str(tmp / 'broken.yaml'))}: YAML syntax error at line 7, column \d+: .+",
        broken.error_line,
    ), broken.error_line
    assert "containers[0].image: required" in typo.error_line
    assert "containers[0].imagee: unknown key" in typo.error_line
    assert changed.error_line == (
        "error: bundle versions are immutable: warehouse-monitor@1.2.0 already exists with a "
        "different digest; push it as a new version (field: version)"
    )


def _inspect(cli: Cli) -> None:
    listed, shown, latest, as_json, diffed = cli.run_all(
        ["bundles", "ls"],
        ["bundles", "show", "warehouse-monitor"],
        ["bundles", "show", "warehouse-monitor@latest"],
        ["bundles", "show", "warehouse-monitor@1.2.0", "--json"],
        ["bundles", "diff", "warehouse-monitor", "1.2.0", "1.3.0"],
    )
    assert re.search(r"warehouse-monitor\s+1\.3\.0\s+2\s+0\s+0", listed.out), listed.out
    versions = [line.split()[0] for line in shown.out.splitlines() if line.startswith("1.")]
    assert versions == ["1.3.0", "1.2.0"], shown.out
    # The spec prints as YAML that pushes again as the very same version.
    assert latest.out.startswith("# warehouse-monitor@1.3.0 sha256:")
    document = yaml.safe_load(latest.out)
    digest = latest.out.split()[2]
    assert parse_bundle(document).digest() == digest
    assert json.loads(as_json.out)["spec"]["containers"][0]["env"] == {"LOG_LEVEL": "info"}
    lines = diffed.out.splitlines()
    assert lines[:2] == ["--- warehouse-monitor@1.2.0", "+++ warehouse-monitor@1.3.0"]
    assert "-    LOG_LEVEL: info" in lines and "+    LOG_LEVEL: debug" in lines
    assert not ANSI.search(diffed.out), "piped output must stay plain"


def _diff_on_a_terminal(cli: Cli) -> str:
    """Run `bundles diff` with a pseudo-terminal as stdout, as a person at a shell would."""
    leader, follower = pty.openpty()
    args = ["bundles", "diff", "warehouse-monitor", "1.2.0", "1.3.0"]
    process = subprocess.Popen(
        [*COMMAND, *args], stdout=follower, stderr=subprocess.PIPE, text=True, env=cli.environment()
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the command exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return b"".join(chunks).decode()


def _assign(cli: Cli, server: LiveServer, token_line: str) -> str:
    credential = enroll(server.url, token_line, "pi-001", {"env": "prod"})
    enroll(server.url, token_line, "pi-002", {"env": "prod"})
    assert sync(server.url, credential).status_code == 200
    one = cli.run("assign", "warehouse-monitor@1.2.0", "--device", "pi-001")
    many, both, none = cli.run_all(
        ["assign", "warehouse-monitor", "--selector", "env=prod", "--json"],
        ["assign", "warehouse-monitor@1.2.0", "--device", "pi-001", "--group", "lab"],
        ["assign", "warehouse-monitor@1.2.0", "--selector", "env=staging"],
    )
    assert one.out.startswith("Assigned warehouse-monitor@1.2.0 to 1 device:"), one
    assert re.search(r"pi-001\s+\d", one.out)
    result = json.loads(many.out)
    assert result["version"] == "1.3.0"  # a bare name means the latest version
    assert [d["device_id"] for d in result["devices"]] == ["pi-001", "pi-002"]
    assert "give exactly one of --device" in both.error_line
    assert 'no device matched selector "env=staging"' in none.error_line
    return credential


FAILURE_LOG = [
    "monitor 1.2.0 starting",
    "[red]not markup[/red] GET /health 503",
    "\x1b[31msensor bus timeout\x1b[0m",
]


def _report(server: LiveServer, credential: str) -> None:
    reported: dict[str, Any] = {
        "generation": 2,
        "status": "failed",
        "reason": "health check failed: http://127.0.0.1:8080/health returned 503 after 60s",
        "bundle": "warehouse-monitor",
        "version": "1.2.0",
        "digest": "sha256:" + "cd" * 32,
        "failed_unit": "monitor",
        "failure_log": FAILURE_LOG,
        "items": [
            {
                "kind": "container",
                "name": "monitor",
                "state": "restarting",
                "restart_count": 4,
                "update_order": "start-first",
                "last_error": "exited with code 137 (out of memory)",
            }
        ],
    }
    response = httpx.post(
        f"{server.url}/api/device/v1/sync",
        json={"reported": reported},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 200, response.text


def _check_device(cli: Cli) -> None:
    shown, listed = cli.run_all(["devices", "show", "pi-001"], ["devices", "ls"])
    text = shown.out
    desired = text[text.index("Desired") : text.index("Reported")]
    reported = text[text.index("Reported") : text.index("Facts")]
    assert re.search(r"bundle\s+warehouse-monitor@1\.3\.0", desired), text
    assert re.search(r"generation\s+2", desired), text
    assert re.search(r"status\s+failed: health check failed: http://127\.0\.0\.1:8080", reported)
    # Under the reason: the failing unit's last lines, as text (no markup, no escapes).
    log = reported[reported.index("Last 3 lines of monitor:") :]
    assert [line.strip() for line in log.splitlines()[1:4]] == [
        "monitor 1.2.0 starting",
        "[red]not markup[/red] GET /health 503",
        "sensor bus timeout",
    ], text
    assert "\x1b" not in text
    assert re.search(r"bundle\s+warehouse-monitor@1\.2\.0 \(sha256:cdcdcdcdcdcd…\)", reported)
    assert re.search(
        r"monitor\s+container\s+restarting\s+4\s+start-first\s+exited with code 137 \(out of memory\)",
        reported,
    ), reported
    rows = {line.split()[0]: line for line in listed.out.splitlines()[1:-1]}
    assert re.search(r"warehouse-monitor@1\.2\.0\s+failed", rows["pi-001"]), listed.out
    assert re.search(r"new\s+never\s+-\s+-", rows["pi-002"]), listed.out


def test_operator_pushes_inspects_and_assigns_bundles(
    live_server: LiveServer, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    _push_and_make_mistakes(cli, tmp_path)
    _inspect(cli)
    coloured = _diff_on_a_terminal(cli)
    assert "\x1b[32m+    LOG_LEVEL: debug" in coloured, coloured
    assert "\x1b[31m-    LOG_LEVEL: info" in coloured, coloured
    token = cli.ok("tokens", "create", "--max-uses", "2").splitlines()[1].strip()
    credential = _assign(cli, live_server, token)
    _report(live_server, credential)
    _check_device(cli)
