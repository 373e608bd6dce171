"""`signalbeam config` with the real CLI against a real server: values set at the tenant, a group
and a device are shown merged with where each came from and whether the device applied them;
secrets are never printed; history, diff and rollback; dry runs change nothing; the editor and
--file; one readable line for every mistake.

The commands' behaviour does not depend on the database, so the module shares one SQLite
server (each test uses its own layers); tests/server/test_config.py covers both backends.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.runner import Cli, admin_request, enroll
from tests.conftest import LiveServer, start_server, stop_server

SECRET = "hunter2-very-secret"
BUNDLE: dict[str, Any] = {
    "name": "site",
    "version": "1.0.0",
    "containers": [{"name": "web", "image": "127.0.0.1:5000/site:1.0.0"}],
}


@dataclass(frozen=True)
class Fleet:
    server: LiveServer
    credential: str  # pi-07's


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One SQLite server with devices pi-07 and pi-08 in the dynamic group oslo; pi-07 runs a
    bundle (only bundle-running devices are given config to apply)."""
    live = start_server(tmp_path_factory.mktemp("config-cli") / "server", ["--no-mdns"])

    def admin(method: str, path: str, body: Any = None) -> Any:
        return admin_request(live.url, live.admin_token, method, path, body)

    token = admin("POST", "/api/v1/enrollment-tokens", {"labels": {"site": "oslo"}})["token"]
    credentials = {name: enroll(live.url, token, name) for name in ("pi-07", "pi-08")}
    admin("POST", "/api/v1/groups", {"name": "oslo", "selector": "site=oslo"})
    for name in ("kiosks", "drafts", "edits"):
        admin("POST", "/api/v1/groups", {"name": name})
    admin("POST", "/api/v1/bundles", BUNDLE)
    admin("POST", "/api/v1/bundles/site/versions/1.0.0/assign", {"devices": ["pi-07"]})
    yield Fleet(live, credentials["pi-07"])
    stop_server(live)


@pytest.fixture
def cli(tmp_path: Path, fleet: Fleet) -> Cli:
    """The CLI, logged in to the shared server."""
    cli = Cli(tmp_path / "config")
    cli.ok("login", "--server", fleet.server.url, "--token", fleet.server.admin_token)
    return cli


def report_applied(fleet: Fleet) -> None:
    """pi-07 syncs and reports the config its desired state carries as applied, as its agent
    would once its units run with it."""
    headers = {"Authorization": f"Bearer {fleet.credential}"}
    sync = f"{fleet.server.url}/api/device/v1/sync"
    desired = httpx.post(sync, json={"known_generation": -1}, headers=headers).json()["desired"]
    config = {"digest": desired["spec"]["config"]["digest"], "status": "applied"}
    reported = {"generation": desired["generation"], "status": "running", "config": config}
    assert httpx.post(sync, json={"reported": reported}, headers=headers).status_code == 200


def effective_lines(out: str) -> dict[str, str]:
    """`KEY=VALUE  (origin)` lines of `config show` by key, spaces squeezed."""
    lines = [re.sub(r"\s{2,}", "  ", line) for line in out.splitlines() if "=" in line]
    return {line.split("=", 1)[0]: line for line in lines}


def test_values_from_three_layers_are_shown_with_their_origin_and_status(
    cli: Cli, fleet: Fleet
) -> None:
    cli.ok("config", "set", "LOG_LEVEL=info", "PORT=8080", "--tenant", "-m", "defaults")
    group = cli.ok(
        "config",
        "set",
        "LOG_LEVEL=debug",
        "--group",
        "oslo",
        "--secret",
        f"DB_PASSWORD={SECRET}",
        "--priority",
        "5",
    )
    assert group.splitlines() == [
        # pi-08 runs no bundle, and config travels with a bundle.
        "group oslo is now at version 1, reaching 1 device.",
        "  + DB_PASSWORD (secret set)",
        "  + LOG_LEVEL=debug",
    ]
    cli.ok("config", "set", 'X="8080"', "RATIO=0.5", "--device", "pi-07")

    shown, layer, port, text = cli.run_all(
        ("config", "show", "--device", "pi-07"),
        ("config", "get", "--group", "oslo"),
        ("config", "get", "PORT", "--tenant", "--json"),
        ("config", "get", "X", "--device", "pi-07", "--json"),
    )
    assert effective_lines(shown.out) == {
        "DB_PASSWORD": "DB_PASSWORD=(secret, set)  (group oslo, version 1)",
        "LOG_LEVEL": "LOG_LEVEL=debug  (group oslo, version 1)",
        "PORT": "PORT=8080  (tenant, version 1)",
        "RATIO": "RATIO=0.5  (device pi-07, version 1)",
        "X": 'X="8080"  (device pi-07, version 1)',
    }
    assert shown.out.splitlines()[-1].startswith("status: pending (the device has not reported")
    assert layer.out.splitlines()[0].startswith("group oslo, version 1 · priority 5 · by user:")
    assert layer.out.splitlines()[1:] == ["DB_PASSWORD=(secret, set)", "LOG_LEVEL=debug"]
    assert json.loads(port.out) == {"key": "PORT", "value": 8080, "secret": False}
    assert json.loads(text.out) == {"key": "X", "value": "8080", "secret": False}

    report_applied(fleet)
    applied, counts, as_json = cli.run_all(
        ("config", "show", "--device", "pi-07"),
        ("config", "status", "--group", "oslo"),
        ("config", "show", "--device", "pi-07", "--json"),
    )
    assert applied.out.splitlines()[-1].startswith("status: applied (sha256:")
    assert counts.out.strip() == "group oslo: 1 applied, 0 pending, 0 failed, 1 without config"
    assert json.loads(as_json.out)["status"]["state"] == "applied"


def test_secrets_are_never_printed(cli: Cli) -> None:
    cli.ok("config", "set", "--secret", f"TOKEN={SECRET}", "--device", "pi-08")
    # KEY alone reads the value from stdin (a prompt without echo on a terminal).
    asked = cli.run(
        "config", "set", "--secret", "API_KEY", "--device", "pi-08", stdin=SECRET + "2\n"
    )
    assert asked.code == 0 and "API_KEY (secret set)" in asked.out, asked
    cli.ok("config", "set", "--secret", f"TOKEN={SECRET}3", "--device", "pi-08")
    results = cli.run_all(
        ("config", "get", "--device", "pi-08"),
        ("config", "get", "--device", "pi-08", "--json"),
        ("config", "get", "TOKEN", "--device", "pi-08"),
        ("config", "show", "--device", "pi-08", "--json"),
        ("config", "history", "--device", "pi-08", "--json"),
        ("config", "diff", "1", "3", "--device", "pi-08"),
        ("config", "diff", "1", "3", "--device", "pi-08", "--json"),
    )
    for result in results:
        assert result.code == 0, result
        assert SECRET not in result.out + result.err
    assert results[2].out.strip() == "(secret, set)"
    assert json.loads(results[1].out)["secrets"] == ["API_KEY", "TOKEN"]
    assert results[5].out.splitlines() == [
        "device pi-08, version 1 -> 3:",
        "  + API_KEY (secret set)",
        "  ~ TOKEN (secret changed)",
    ]


def test_history_diff_and_rollback(cli: Cli) -> None:
    cli.ok("config", "set", "A=1", "--group", "kiosks", "-m", "first")
    cli.ok("config", "set", "A=2", "B=blue", "--group", "kiosks", "-m", "second")
    again = cli.ok("config", "set", "B=blue", "--group", "kiosks", "-m", "the same")
    assert again == "No change; group kiosks stays at version 2.\n"
    history, diff, current = cli.run_all(
        ("config", "history", "--group", "kiosks"),
        ("config", "diff", "1", "2", "--group", "kiosks"),
        ("config", "diff", "1", "--group", "kiosks", "--json"),
    )
    rows = history.out.splitlines()
    assert rows[0].split() == ["VERSION", "WHEN", "AUTHOR", "MESSAGE", "CHANGES"]
    assert rows[1].split()[:1] + rows[1].split()[-5:] == [
        "2",
        "second",
        "A",
        "changed,",
        "B",
        "added",
    ]
    assert rows[2].split()[:1] + rows[2].split()[-3:] == ["1", "first", "A", "added"]
    assert rows[-1] == "showing 1-2 of 2"
    assert diff.out.splitlines() == ["group kiosks, version 1 -> 2:", "  ~ A: 1 -> 2", "  + B=blue"]
    assert json.loads(current.out)["to"] == 2

    back = cli.ok("config", "rollback", "--to", "1", "--group", "kiosks")
    assert back.splitlines() == [
        "group kiosks is now at version 3, reaching 0 devices.",
        "  ~ A: 2 -> 1",
        "  - B (was blue)",
    ]
    layer = json.loads(cli.ok("config", "get", "--group", "kiosks", "--json"))
    assert (layer["version"], layer["values"], layer["message"]) == (
        3,
        {"A": 1},
        "rollback to version 1",
    )
    missing = cli.run("config", "rollback", "--to", "9", "--group", "kiosks")
    assert "group kiosks has no config version 9 (versions 1..3)" in missing.error_line


def test_dry_runs_show_the_change_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    cli.ok("config", "set", "MODE=safe", "--group", "drafts")
    document = tmp_path / "drafts.yaml"
    document.write_text("MODE: fast\nWORKERS: 4\n")
    set_, unset, rollback, edit = cli.run_all(
        ("config", "set", "MODE=fast", "--group", "drafts", "--dry-run"),
        ("config", "unset", "MODE", "--group", "drafts", "--dry-run"),
        ("config", "rollback", "--to", "1", "--group", "drafts", "--dry-run"),
        ("config", "edit", "--file", str(document), "--group", "drafts", "--dry-run"),
    )
    assert set_.out.splitlines() == [
        "Dry run: group drafts would become version 2, reaching 0 devices; nothing was changed.",
        "  ~ MODE: safe -> fast",
    ]
    assert unset.out.splitlines()[1:] == ["  - MODE (was safe)"]
    assert rollback.out.splitlines() == ["No change; group drafts stays at version 1."]
    assert edit.out.splitlines()[1:] == ["  ~ MODE: safe -> fast", "  + WORKERS=4"]
    layer = json.loads(cli.ok("config", "get", "--group", "drafts", "--json"))
    assert (layer["version"], layer["values"]) == (1, {"MODE": "safe"})
    history = json.loads(cli.ok("config", "history", "--group", "drafts", "--json"))
    assert history["total"] == 1


def editor(tmp_path: Path, name: str, body: str) -> str:
    """An $EDITOR: a script run with the file to edit as its one argument."""
    script = tmp_path / name
    script.write_text(f"import sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n{body}")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_edit_opens_the_layer_as_yaml_shows_the_diff_and_applies(cli: Cli, tmp_path: Path) -> None:
    cli.ok("config", "set", "LOG_LEVEL=info", "PORT=8080", "--group", "edits")
    cli.ok("config", "set", "--secret", f"KEY={SECRET}", "--group", "edits")
    change = editor(
        tmp_path,
        "change.py",
        "text = path.read_text()\n"
        "assert 'PORT: 8080' in text and 'Secrets' in text and 'KEY' in text\n"
        "path.write_text(text.replace('info', 'warn').replace('PORT: 8080\\n', 'DAY: 2024-05-01\\n'))\n",
    )
    declined = cli.run("config", "edit", "--group", "edits", stdin="n\n", env={"EDITOR": change})
    assert "  ~ LOG_LEVEL: info -> warn" in declined.out
    assert "not applied; group edits is unchanged" in declined.error_line
    applied = cli.run("config", "edit", "--group", "edits", stdin="y\n", env={"EDITOR": change})
    assert applied.code == 0, applied
    # The answer to the question is typed on stdin, so no newline is echoed after it.
    assert applied.out.splitlines()[-4].endswith(
        "[y/N]: group edits is now at version 3, reaching 0 devices."
    )
    assert applied.out.splitlines()[-3:] == [
        "  + DAY=2024-05-01",
        "  ~ LOG_LEVEL: info -> warn",
        "  - PORT (was 8080)",
    ]
    assert SECRET not in applied.out
    layer = json.loads(cli.ok("config", "get", "--group", "edits", "--json"))
    assert layer["values"] == {"DAY": "2024-05-01", "LOG_LEVEL": "warn"}
    assert layer["secrets"] == ["KEY"], "edit keeps the layer's secrets"

    untouched = editor(tmp_path, "untouched.py", "pass\n")
    same = cli.run("config", "edit", "--group", "edits", env={"EDITOR": untouched})
    assert same.out.strip() == "No change; group edits stays at version 3."

    broken = editor(tmp_path, "broken.py", "path.write_text('LOG_LEVEL: [unclosed\\n')\n")
    bad = cli.run("config", "edit", "--group", "edits", env={"EDITOR": broken})
    line = bad.error_line
    assert "the edited config is not valid YAML" in line
    kept = re.search(r"your text is in (\S+):", line)
    assert kept is not None and Path(kept[1]).read_text() == "LOG_LEVEL: [unclosed\n"
    assert f"signalbeam config edit --group edits --file {kept[1]}" in line

    # Someone else changes the layer while the editor is open: the edit is refused, not lost.
    racing = editor(
        tmp_path,
        "racing.py",
        "import subprocess\n"
        "subprocess.run([sys.executable, '-m', 'signalbeam', 'config', 'set', 'Z=1', "
        "'--group', 'edits'], check=True, capture_output=True)\n"
        "path.write_text('LOG_LEVEL: error\\n')\n",
    )
    stale = cli.run("config", "edit", "--group", "edits", "--yes", env={"EDITOR": racing})
    assert "group edits is at config version 4, not 3" in stale.error_line
    assert "your text is in" in stale.error_line

    given = tmp_path / "given.json"
    given.write_text('{"LOG_LEVEL": "error"}')
    from_file = cli.ok("config", "edit", "--group", "edits", "--file", str(given), "-m", "file")
    assert from_file.splitlines()[0] == "group edits is now at version 5, reaching 0 devices."


def test_mistakes_are_one_readable_line(cli: Cli, tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    results = cli.run_all(
        ("config", "get"),
        ("config", "get", "--tenant", "--group", "oslo"),
        ("config", "show", "--group", "oslo"),
        ("config", "status", "--tenant"),
        ("config", "set", "LOG_LEVEL", "--tenant"),
        ("config", "set", "--tenant"),
        ("config", "set", "1BAD=x", "--tenant"),
        ("config", "get", "--device", "pi-404"),
        ("config", "get", "NOPE", "--tenant"),
        ("config", "edit", "--tenant", "--file", str(listed)),
        ("config", "diff", "1", "99", "--tenant"),
        ("config", "set", "A=1", "--group", "oslo", "--priority", "5000"),
    )
    lines = [result.error_line for result in results]
    exactly_one = "error: give exactly one of --device DEVICE, --group GROUP or --tenant"
    assert lines[:2] == [exactly_one, exactly_one]
    assert lines[2].startswith("error: config show needs --device DEVICE")
    assert lines[3] == "error: config status takes --group GROUP or --device DEVICE"
    assert lines[4].startswith('error: "LOG_LEVEL" is not KEY=VALUE')
    assert lines[5].startswith("error: nothing to set")
    assert "set.1BAD" in lines[6]
    assert 'no device "pi-404"' in lines[7]
    assert lines[8].startswith("error: NOPE is not set in tenant")
    assert lines[9] == f"error: {listed} must be an object of KEY: VALUE lines, not a list"
    assert "has no config version" in lines[10] and "(field: " in lines[10]
    assert "priority" in lines[11]
