"""Signing keys with the real CLI against a real server: create, register, sign pushes, lock down."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from signalbeam.protocol.signing import Trust, manifest_payload, verify
from tests.cli.runner import Cli
from tests.conftest import LiveServer

SPEC = """\
name: door-sensor
version: 0.3.0
apps:
  - name: reader
    artifact:
      url: http://127.0.0.1:9000/reader.tar.gz
      sha256: 9f2c3a0e1b4d5c6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e41
    command: [./reader, --port, "9100"]
"""


def test_operator_keys_sign_pushes_and_can_lock_out_the_server_key(
    live_server: LiveServer, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("login", "--server", live_server.url, "--token", live_server.admin_token)
    created = cli.ok("keys", "create", "alice")
    assert created.startswith("created alice (ed25519:")
    key_file = cli.config_dir / "keys" / "alice.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = json.loads(key_file.read_text())["public_key"]
    assert cli.run("keys", "create", "alice").error_line.startswith("error: ")
    assert "signalbeam keys create bob" in cli.run("keys", "register", "bob").error_line

    locked_early = cli.run("keys", "policy", "--operator-keys-only")
    assert "register an operator key first" in locked_early.error_line
    assert cli.ok("keys", "register", "alice").startswith("registered alice")
    cli.ok("keys", "policy", "--operator-keys-only")
    listed = cli.ok("keys", "ls")
    assert "alice" in listed and "operator keys only" in listed

    cli.ok("keys", "create", "bob")
    refused = cli.run("keys", "register", "bob")
    assert "operator keys only" in refused.error_line
    cli.ok("keys", "register", "bob", "--sign-with", "alice")

    (tmp_path / "bundle.yaml").write_text(SPEC)
    pushed = cli.ok("bundles", "push", "-f", str(tmp_path / "bundle.yaml"), "--sign-with", "bob")
    assert pushed.strip().endswith("signed by " + _key_id(cli, "bob") + ")"), pushed

    # What the server now hands devices verifies under the pinned trust set, with bob's key.
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as api:
        trust = Trust.from_statement(api.get("/api/v1/signing/trust").json()["statement"])
        spec = api.get("/api/v1/bundles/door-sensor/versions/0.3.0").json()["spec"]
    assert any(k.public_key == public for k in trust.keys)
    signatures = [
        {"key_id": _key_id(cli, "bob"), "signature": _sig(cli, "bob", manifest_payload(spec))}
    ]
    assert verify(trust, manifest_payload(spec), signatures, "door-sensor@0.3.0").kind == (
        "operator"
    )


def _key_id(cli: Cli, name: str) -> str:
    return str(json.loads((cli.config_dir / "keys" / f"{name}.json").read_text())["key_id"])


def _sig(cli: Cli, name: str, payload: bytes) -> str:
    from signalbeam.protocol.signing import KeyPair

    data = json.loads((cli.config_dir / "keys" / f"{name}.json").read_text())
    return KeyPair(data["private_key"], data["public_key"]).sign(payload).signature
