"""A real agent runs native apps whose artifacts were uploaded to the control plane itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.agent.bundle_support import (
    answer,
    app_tarball,
    assign,
    push,
    reported,
    start_agent,
    wait_reported,
)
from tests.agent.support import Admin, Agents, wait_until
from tests.components import free_port
from tests.conftest import LiveServer


def upload(admin: Admin, name: str, content: bytes) -> str:
    """Upload an artifact to the control plane; its sha256."""
    response = admin.http.put(f"/api/v1/artifacts/{name}", content=content)
    assert response.status_code == 201, response.text
    digest: str = response.json()["sha256"]
    return digest


def relay(version: str, artifact: dict[str, str], port: int, flag: Path) -> dict[str, Any]:
    """The relay app at `version`, its artifact taken from the control plane."""
    return {
        "name": "relay",
        "version": version,
        "apps": [
            {
                "name": "relay-controller",
                "artifact": artifact,
                "command": [sys.executable, "relay.py", str(port), str(flag), version],
                "health": {"tcp": port, "timeout": "8s", "interval": "200ms"},
            }
        ],
    }


def test_uploaded_artifact_runs_and_updates(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    agent = start_agent(fast_server, admin, agents, tmp_path, "cp-1")
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    try:
        for version in ("1.0.0", "1.1.0"):
            digest = upload(admin, "relay.tar.gz", app_tarball(version))
            push(admin, relay(version, {"name": "relay.tar.gz"}, port, flag))
            assign(admin, f"relay@{version}", devices=["cp-1"])
            running = wait_reported(admin, "cp-1", "running", version)
            assert answer(port) == version
            [item] = running["items"]
            assert (item["name"], item["artifact_sha256"]) == ("relay-controller", digest)
        # The device took the blob from the control plane: no bundle names a URL.
        listed = admin.http.get("/api/v1/artifacts").json()
        assert sorted(a["used_by"][0] for a in listed) == ["relay@1.0.0", "relay@1.1.0"]
    finally:
        assert agent.alive(), agent.log()


def test_bytes_changed_on_the_server_after_upload_never_run(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, "cp-2")
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    digest = upload(admin, "relay.tar.gz", app_tarball("1.0.0"))
    # Someone with access to the server's disk swaps the bytes behind the recorded digest.
    blob = fast_server.data_dir / "artifacts" / "sha256" / digest[:2] / digest
    blob.write_bytes(app_tarball("evil"))
    push(admin, relay("1.0.0", {"sha256": digest}, port, flag))
    assign(admin, "relay@1.0.0", devices=["cp-2"])

    def failed() -> dict[str, Any] | None:
        now = reported(admin, "cp-2")
        return now if now.get("status") == "failed" else None

    report = wait_until(failed, 90, "cp-2 to report failure")
    assert f"artifact sha256 mismatch: expected {digest[:12]}…" in report["reason"]
    assert answer(port) == ""
    assert not any(item.get("state") == "running" for item in report.get("items", []))
