"""Artifacts with the real CLI against a real server: push, list, use in a bundle, remove."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tests.cli.runner import Cli
from tests.conftest import LiveServer

BUNDLE = """\
name: relay
version: 1.0.0
apps:
  - name: relay
    artifact: {name: relay.tar.gz}
    command: [./relay]
"""


def test_operator_pushes_lists_and_removes_artifacts(
    live_server: LiveServer, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    content = b"relay build 1.0.0\n" * 100_000
    file = tmp_path / "relay.tar.gz"
    file.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()

    pushed = cli.ok("artifacts", "push", str(file)).splitlines()
    assert pushed == ["uploaded relay.tar.gz (1.8 MB)", f"sha256 {digest}"]
    again = cli.ok("artifacts", "push", str(file), "--name", "spare", "--json")
    assert json.loads(again)["name"] == "spare" and json.loads(again)["sha256"] == digest

    (tmp_path / "bundle.yaml").write_text(BUNDLE)
    cli.ok("bundles", "push", "-f", str(tmp_path / "bundle.yaml"))
    listed = cli.ok("artifacts", "ls")
    assert re.search(rf"relay\.tar\.gz\s+{digest[:12]}…\s+1\.8 MB\s+1\s", listed), listed
    assert re.search(rf"spare\s+{digest[:12]}…\s+1\.8 MB\s+1\s", listed), listed
    as_json = json.loads(cli.ok("artifacts", "ls", "--json"))
    assert {a["name"]: a["used_by"] for a in as_json} == {
        "relay.tar.gz": ["relay@1.0.0"],
        "spare": ["relay@1.0.0"],
    }

    # Removing one name is fine: the other still holds the bytes the bundle needs.
    assert cli.ok("artifacts", "rm", "spare") == f"removed spare (sha256 {digest[:12]}…)\n"
    refused = cli.run("artifacts", "rm", "relay.tar.gz")
    assert refused.error_line == (
        "error: artifact relay.tar.gz is used by bundle version relay@1.0.0; devices may need "
        "it to install or roll back to them, so it stays while they exist (field: name)"
    )
    missing, bad = cli.run_all(
        ["artifacts", "push", str(tmp_path / "nope.bin")],
        ["artifacts", "push", str(file), "--name", "has space"],
    )
    assert missing.error_line == f"error: {tmp_path / 'nope.bin'}: no such file"
    assert "is not a valid artifact name" in bad.error_line
