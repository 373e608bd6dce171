"""Rollouts with real agents running a native-app bundle: one completes, a broken one rolls back."""

from __future__ import annotations

import io
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import ArtifactServer, assign, push, serve_artifacts, wait_reported
from tests.agent.support import Admin, Agents, agent_env, register, wait_until
from tests.conftest import LiveServer

DEVICES = ("edge-1", "edge-2")
# Stays up while its version is good; a broken version exits at once, so it never gets healthy.
APP = """\
import sys, time
version, mode = sys.argv[1], sys.argv[2]
print(f"beacon {version} ({mode})", flush=True)
if mode == "broken":
    sys.exit(3)
while True:
    time.sleep(1)
"""


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    """Artifacts over real HTTP on loopback."""
    yield from serve_artifacts()


def _tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = APP.encode()
        info = tarfile.TarInfo("beacon.py")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _beacon(version: str, artifacts: ArtifactServer, mode: str = "good") -> dict[str, Any]:
    artifact = artifacts.add("beacon.tar.gz", _tarball())
    return {
        "name": "beacon",
        "version": version,
        "apps": [
            {
                "name": "beacon",
                "artifact": {"url": artifact.url, "sha256": artifact.sha256},
                "command": [sys.executable, "beacon.py", version, mode],
                "health": {"running-for": "1s", "timeout": "10s"},
            }
        ],
    }


def _start_agents(server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path) -> None:
    token = admin.enrollment_token(site="lab")
    for device_id in DEVICES:
        state = tmp_path / device_id
        done = register(state, token, "--server", server.url, "--device-id", device_id)
        assert done.returncode == 0, done.stderr
        agents.start(state, agent_env())


def _rollout(admin: Admin, version: str) -> int:
    body = {"bundle": "beacon", "version": version, "selector": "site=lab"}
    response = admin.http.post("/api/v1/rollouts", json={**body, "waves": "1,100%", "soak": "2s"})
    assert response.status_code == 201, response.text
    rollout_id: int = response.json()["id"]
    return rollout_id


def _ended(admin: Admin, rollout_id: int, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = admin.http.get(f"/api/v1/rollouts/{rollout_id}").json()
        return body if body["status"] == status else None

    try:
        return wait_until(check, 120, f"rollout {rollout_id} to end {status}")
    except AssertionError as err:
        detail = admin.http.get(f"/api/v1/rollouts/{rollout_id}").json()
        raise AssertionError(f"{err}; it is {detail}") from None


def test_rollout_with_real_agents_completes_then_a_broken_version_rolls_back(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    _start_agents(fast_server, admin, agents, tmp_path)
    push(admin, _beacon("1.0.0", artifacts))
    assign(admin, "beacon@1.0.0", selector="site=lab")
    for device_id in DEVICES:
        wait_reported(admin, device_id, "running", "1.0.0")

    push(admin, _beacon("2.0.0", artifacts))
    done = _ended(admin, _rollout(admin, "2.0.0"), "completed")
    assert [(d["device_id"], d["status"]) for d in done["devices"]] == [
        ("edge-1", "succeeded"),
        ("edge-2", "succeeded"),
    ]
    for device_id in DEVICES:
        wait_reported(admin, device_id, "running", "2.0.0")

    # The canary cannot run 3.0.0: the rollout halts on it and sends it back to 2.0.0, and
    # the second device is never touched.
    push(admin, _beacon("3.0.0", artifacts, mode="broken"))
    generation = admin.device("edge-2")["desired_generation"]
    rolled = _ended(admin, _rollout(admin, "3.0.0"), "rolled_back")
    [failure] = rolled["failures"]
    assert failure["device_id"] == "edge-1" and "beacon@3.0.0" in failure["reason"], failure
    assert rolled["waves"][1]["started"] is False
    wait_reported(admin, "edge-1", "running", "2.0.0")
    assert admin.device("edge-2")["desired_generation"] == generation
    assert admin.device("edge-2")["reported"]["version"] == "2.0.0"
