"""A real agent runs native-app bundles: update, self-heal, refuse bad bytes, roll back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import (
    ArtifactServer,
    answer,
    app_tarball,
    assign,
    push,
    relay,
    reported,
    serve_artifacts,
    start_agent,
    wait_reported,
)
from tests.agent.support import Admin, Agents, wait_until
from tests.components import free_port
from tests.conftest import LiveServer


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    """Artifacts over real HTTP on loopback."""
    yield from serve_artifacts()


def test_native_app_updates_self_heals_and_rolls_back(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    agent = start_agent(fast_server, admin, agents, tmp_path, "relay-1")
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    try:
        for version in ("1.0.0", "1.1.0"):
            push(admin, relay(version, artifacts, port, flag))
            assign(admin, f"relay@{version}", devices=["relay-1"])
            running = wait_reported(admin, "relay-1", "running", version)
            assert answer(port) == version
            [item] = running["items"]
            assert (item["name"], item["state"], item["healthy"]) == (
                "relay-controller",
                "running",
                True,
            )

        # The app crashes after the update: restarted with backoff, and the device says so.
        flag.unlink()
        degraded = wait_reported(admin, "relay-1", "degraded", "1.1.0")
        assert "relay-controller" in degraded["reason"]
        flag.touch()
        wait_reported(admin, "relay-1", "running", "1.1.0")

        # 1.2.0 never passes its health check: the device goes back to 1.1.0 on its own.
        broken = relay("1.2.0", artifacts, port, flag, health_port=free_port())
        push(admin, broken)
        assign(admin, "relay@1.2.0", devices=["relay-1"])
        failed = wait_reported(admin, "relay-1", "failed", "1.1.0")
        assert "relay@1.2.0 failed: health check failed" in failed["reason"]
        assert "rolled back to relay@1.1.0" in failed["reason"]
        assert answer(port) == "1.1.0"
        # Beside the reason: what 1.2.0 printed, read before the rollback restarted 1.1.0.
        assert failed["failed_unit"] == "relay-controller"
        assert f"relay 1.2.0 listening on {port}" in failed["failure_log"]
        event = _update_failed(admin, "relay@1.2.0")
        assert "rolled back to relay@1.1.0" in event["message"]
        assert event["data"]["failed_unit"] == "relay-controller"
        assert event["data"]["failure_log"] == failed["failure_log"]

        # 1.3.0 exits while starting: its report carries what it printed before it exited.
        push(admin, relay("1.3.0", artifacts, port, tmp_path / "no-such-flag"))
        assign(admin, "relay@1.3.0", devices=["relay-1"])
        crashed = wait_until(
            lambda: _failed_on(admin, "relay-1", "relay@1.3.0"), 60, "relay@1.3.0 to fail"
        )
        assert "exited with code 3 while starting" in crashed["reason"]
        lines = crashed["failure_log"]
        started = lines.index(f"relay 1.3.0 listening on {port}")
        assert f"relay 1.3.0: {tmp_path / 'no-such-flag'} is gone, giving up" in lines[started:]
        assert len(lines) <= 50
        assert _update_failed(admin, "relay@1.3.0")["data"]["failure_log"] == lines
        assert answer(port) == "1.1.0"
    finally:
        assert agent.alive(), agent.log()


def _failed_on(admin: Admin, device_id: str, ref: str) -> dict[str, Any] | None:
    now = reported(admin, device_id)
    return now if now.get("status") == "failed" and ref in (now.get("reason") or "") else None


def _update_failed(admin: Admin, ref: str) -> dict[str, Any]:
    """The `agent.update_failed` event about `ref`, once the agent's outbox delivered it."""

    def find() -> dict[str, Any] | None:
        events = admin.events("relay-1")
        return next(
            (
                e
                for e in reversed(events)
                if e["type"] == "agent.update_failed" and ref in e["message"]
            ),
            None,
        )

    found: dict[str, Any] = wait_until(find, 30, f"the agent.update_failed event of {ref}")
    return found


def test_tampered_artifact_never_runs(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, "relay-2")
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    push(admin, relay("1.0.0", artifacts, port, flag))
    assign(admin, "relay@1.0.0", devices=["relay-2"])
    wait_reported(admin, "relay-2", "running", "1.0.0")

    # The bytes at the URL are not the ones the bundle pins.
    bad = relay("2.0.0", artifacts, free_port(), flag)
    artifacts.files["/relay-2.0.0.tar.gz"] = app_tarball("evil")
    push(admin, bad)
    assign(admin, "relay@2.0.0", devices=["relay-2"])
    failed = wait_reported(admin, "relay-2", "failed", "1.0.0")
    assert "artifact sha256 mismatch" in failed["reason"]
    # Nothing of 2.0.0 ever ran, so there is no output to show.
    assert (failed["failed_unit"], failed["failure_log"]) == (None, [])
    assert answer(port) == "1.0.0"
    assert not any("evil" in str(item) for item in failed["items"])


def test_container_bundle_on_a_device_without_an_engine_says_so(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    socket_path = tmp_path / "no-engine.sock"
    start_agent(
        fast_server, admin, agents, tmp_path, "bare-1", container_socket=f"unix://{socket_path}"
    )
    push(
        admin,
        {"name": "web", "version": "1.0.0", "containers": [{"name": "web", "image": "busybox:1"}]},
    )
    assign(admin, "web@1.0.0", devices=["bare-1"])

    def failed() -> dict[str, Any] | None:
        now = reported(admin, "bare-1")
        return now if now.get("status") == "failed" else None

    reason = wait_until(failed, 60, "bare-1 to report failure")["reason"]
    assert "needs a container engine" in reason and str(socket_path) in reason
    assert "Traceback" not in reason
