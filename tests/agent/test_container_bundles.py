"""Two real agents run a container bundle on a real Podman: update, refuse, roll back, report.

The acceptance test of bundles: a group of two devices; 1.0.0 then 1.1.0 run; 1.2.0 never
passes its health check, so both devices go back to 1.1.0 on their own and say why; an
image from a registry that is down never replaces what runs. The server shows all of it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import assign, push, reported, wait_reported
from tests.agent.support import Admin, AgentProcess, Agents, agent_env, register, wait_until
from tests.components import free_port
from tests.conftest import LiveServer
from tests.engine import Engine, engine

__all__ = ["engine"]

DEVICES = ("gate-1", "gate-2")
SERVE = "exec httpd -f -p 8080 -h /www"
HEALTH = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]


def site(version: str, image: str, *, health: list[str] = HEALTH) -> dict[str, Any]:
    """A bundle with one busybox web server; healthy when its /health answers inside it."""
    return {
        "name": "site",
        "version": version,
        "containers": [
            {
                "name": "web",
                "image": image,
                # One line of output, so a failed update has something of its own to show.
                "command": ["sh", "-c", f"echo site {version} serving /www; {SERVE}"],
                "env": {"SITE_VERSION": version},
                "health": {"exec": health, "timeout": "6s", "interval": "300ms"},
            }
        ],
    }


def running_bundle(engine: Engine, device_id: str) -> list[tuple[str, str]]:
    """(bundle label, state) of each container the engine runs for the device."""
    return [
        (str(dict(c["Labels"])["io.signalbeam.bundle"]), str(c["State"]))  # type: ignore[call-overload]
        for c in engine.containers(device_id)
    ]


def _failed_on(admin: Admin, device_id: str, ref: str) -> dict[str, Any] | None:
    now = reported(admin, device_id)
    return now if now.get("status") == "failed" and ref in now.get("reason", "") else None


@pytest.fixture
def fleet(
    fast_server: LiveServer, admin: Admin, agents: Agents, engine: Engine, tmp_path: Path
) -> Iterator[list[AgentProcess]]:
    """Two agents on the engine, members of group `gates`."""
    for device_id in DEVICES:
        engine.remove_owned(device_id)
    started = []
    for device_id in DEVICES:
        state = tmp_path / device_id
        done = register(
            state, admin.enrollment_token(), "--server", fast_server.url, "--device-id", device_id
        )
        assert done.returncode == 0, done.stderr
        started.append(agents.start(state, agent_env(container_socket=engine.socket)))
    assert admin.http.post("/api/v1/groups", json={"name": "gates"}).status_code == 201
    added = admin.http.post("/api/v1/groups/gates/members", json={"devices": list(DEVICES)})
    assert added.status_code == 200, added.text
    yield started
    agents.stop_all()
    for device_id in DEVICES:
        engine.remove_owned(device_id)


def test_a_group_updates_and_rolls_back_a_broken_version_on_its_own(
    admin: Admin, engine: Engine, fleet: list[AgentProcess]
) -> None:
    for version in ("1.0.0", "1.1.0"):
        push(admin, site(version, engine.image("sb/site", version)))
        assign(admin, f"site@{version}", group="gates")
        for device_id in DEVICES:
            now = wait_reported(admin, device_id, "running", version)
            [item] = now["items"]
            assert (item["name"], item["state"], item["healthy"]) == ("web", "running", True)
            assert item["image"] == engine.image("sb/site", version)
            # The old container is gone, not merely stopped beside the new one.
            assert running_bundle(engine, device_id) == [(f"site@{version}", "running")]

    broken = [*HEALTH[:-1], "http://127.0.0.1:8080/not-there"]
    push(admin, site("1.2.0", engine.image("sb/site", "1.2.0"), health=broken))
    assign(admin, "site@1.2.0", group="gates")
    for device_id in DEVICES:
        failed = wait_reported(admin, device_id, "failed", "1.1.0")
        assert "site@1.2.0 failed: health check failed: web" in failed["reason"]
        assert "/not-there" in failed["reason"]
        assert "rolled back to site@1.1.0" in failed["reason"]
        # What the 1.2.0 container wrote, read before the rollback removed it.
        assert (failed["failed_unit"], failed["failure_log"]) == (
            "web",
            ["site 1.2.0 serving /www"],
        )
        assert running_bundle(engine, device_id) == [("site@1.1.0", "running")]
        detail = admin.device(device_id)
        assert detail["desired"]["version"] == "1.2.0"  # the server still wants it
        kinds = [e["type"] for e in admin.events(device_id)]
        assert "agent.update_failed" in kinds

    # A registry that is down: the pull fails, nothing running is touched.
    down = f"127.0.0.1:{free_port()}/sb/site:1.3.0"
    push(admin, site("1.3.0", down))
    assign(admin, "site@1.3.0", group="gates")
    for device_id in DEVICES:
        failed = wait_until(
            functools.partial(_failed_on, admin, device_id, "site@1.3.0"), 60, "1.3.0 to fail"
        )
        assert failed["version"] == "1.1.0"
        registry = down.split("/")[0]
        assert (
            f"image pull failed: registry {registry} unreachable (connection refused)"
            in (failed["reason"])
        )
        assert running_bundle(engine, device_id) == [("site@1.1.0", "running")]

    listed = {b["name"]: b for b in admin.http.get("/api/v1/bundles").json()}
    assert (listed["site"]["latest_version"], listed["site"]["running"]) == ("1.3.0", 2)
    for agent in fleet:
        assert agent.alive(), agent.log()
    assert all("Traceback" not in agent.log() for agent in fleet)


def test_a_crash_after_the_update_is_healed_and_reported(
    admin: Admin, engine: Engine, fleet: list[AgentProcess]
) -> None:
    device_id = DEVICES[0]
    push(admin, site("1.0.0", engine.image("sb/site", "1.0.0")))
    assign(admin, "site@1.0.0", devices=[device_id])
    wait_reported(admin, device_id, "running", "1.0.0")

    # Kill the web server inside the container: the container exits; the agent restarts it
    # and the device shows degraded in between, then running again.
    [container] = engine.containers(device_id)
    engine.podman("kill", str(container["Id"]))
    degraded = wait_reported(admin, device_id, "degraded", "1.0.0")
    assert "container web is" in degraded["reason"]
    healed = wait_reported(admin, device_id, "running", "1.0.0")
    [item] = healed["items"]
    assert item["restart_count"] >= 1
    assert reported(admin, device_id)["status"] == "running"
