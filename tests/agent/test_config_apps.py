"""Config reaches real native apps through a real agent: env and files, only where it changed.

Two apps read config: `web` takes LOG_LEVEL from `log.level` and renders `conf/app.ini`
from a template with a secret in it (and re-reads it on SIGHUP); `worker` takes WORKERS
from `workers`. Each answers on its TCP port with its pid, its env and the file as it last
read it, so a test sees what a person would: which process restarted and what it runs with.
The layers are signed by the test control plane's key, which the agent pinned at enrollment.
"""

from __future__ import annotations

import io
import json
import socket
import stat
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import ArtifactServer, serve_artifacts
from tests.agent.config_plane import ConfigPlane, config_plane, layer
from tests.agent.support import AgentProcess, Agents, agent_env, register, wait_until
from tests.components import free_port

DEVICE = "config-1"
APP = """\
import json, os, pathlib, signal, socket, sys
port, name = int(sys.argv[1]), sys.argv[2]
conf = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 else None
if os.environ.get("LOG_LEVEL") == "crash":
    print(f"{name}: LOG_LEVEL=crash, giving up", flush=True)
    sys.exit(3)
seen = {"file": conf.read_text() if conf else None, "reloads": 0}
def reload(*_):
    seen["file"], seen["reloads"] = conf.read_text(), seen["reloads"] + 1
signal.signal(signal.SIGHUP, reload)
server = socket.create_server(("127.0.0.1", port))
print(f"{name} listening on {port}", flush=True)
while True:
    conn, _ = server.accept()
    env = {k: os.environ[k] for k in ("LOG_LEVEL", "WORKERS") if k in os.environ}
    conn.sendall(json.dumps({"pid": os.getpid(), "env": env, **seen}).encode())
    conn.close()
"""
SECRET = {"db.password": "s3cret"}
TEMPLATE = "greeting={{ greeting }}\npassword={{ db.password }}\n"


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    yield from serve_artifacts()


@pytest.fixture
def plane() -> Iterator[ConfigPlane]:
    with config_plane() as served:
        yield served


def tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = APP.encode()
        info = tarfile.TarInfo("app.py")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Fleet:
    """The bundle of the two apps, their ports, and the agent running them."""

    def __init__(self, plane: ConfigPlane, artifacts: ArtifactServer, agents: Agents, tmp: Path):
        self.plane, self.agents, self.state = plane, agents, tmp / DEVICE
        self.ports = {"web": free_port(), "worker": free_port()}
        artifact = artifacts.add("app.tar.gz", tarball())
        ref = {"url": artifact.url, "sha256": artifact.sha256}
        self.bundle: dict[str, Any] = {
            "name": "shop",
            "version": "1.0.0",
            "apps": [
                self._app("web", ref, ["conf/app.ini"]),
                self._app("worker", ref, []),
            ],
        }
        web, worker = self.bundle["apps"]
        web["config_env"] = {"LOG_LEVEL": "log.level"}
        web["config_files"] = [{"path": "conf/app.ini", "template": TEMPLATE}]
        web["reload_signal"] = "SIGHUP"
        worker["config_env"] = {"WORKERS": "workers"}
        self.agent: AgentProcess | None = None

    def _app(self, name: str, ref: dict[str, str], extra: list[str]) -> dict[str, Any]:
        port = self.ports[name]
        return {
            "name": name,
            "artifact": ref,
            "command": [sys.executable, "app.py", str(port), name, *extra],
            "health": {"tcp": port, "timeout": "8s", "interval": "200ms"},
        }

    def start(self) -> AgentProcess:
        if not (self.state / "identity.json").exists():
            done = register(self.state, "token", "--server", self.plane.url, "--device-id", DEVICE)
            assert done.returncode == 0, done.stderr
        self.agent = self.agents.start(self.state, agent_env(interval="1"))
        return self.agent

    def give(self, layers: list[Any]) -> int:
        return self.plane.give(self.plane.document(self.bundle, layers))

    def ask(self, name: str) -> dict[str, Any]:
        """What app `name` says about itself ({} when nothing answers)."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports[name]), timeout=2) as conn:
                answer: dict[str, Any] = json.loads(conn.recv(65536).decode())
                return answer
        except (OSError, ValueError):
            return {}

    def reported(self, generation: int, status: str = "running") -> dict[str, Any]:
        """Wait until the device reports `generation` at `status`; that report."""

        def check() -> dict[str, Any] | None:
            now = self.plane.last()
            return (
                now if (now.get("generation"), now.get("status")) == (generation, status) else None
            )

        try:
            return wait_until(check, 60, f"generation {generation} to be {status}")
        except AssertionError as err:
            log = self.agent.log() if self.agent else ""
            raise AssertionError(f"{err}; last report {self.plane.last()}\n{log}") from None


def base_layers(**values: Any) -> list[Any]:
    tenant = {"log.level": "info", "workers": 2, "greeting": "hello", **values}
    return [layer("tenant", "", 1, tenant, {"db.password": "s3cret"})]


@pytest.fixture
def fleet(
    plane: ConfigPlane, artifacts: ArtifactServer, agents: Agents, tmp_path: Path
) -> Iterator[Fleet]:
    running = Fleet(plane, artifacts, agents, tmp_path)
    running.start()
    yield running
    agents.stop_all()


def test_a_config_change_restarts_only_the_units_whose_config_changed(fleet: Fleet) -> None:
    first = fleet.give(base_layers())
    report = fleet.reported(first)
    assert report["config"] == {"digest": fleet.plane.spec["config"]["digest"], "status": "applied"}
    web, worker = fleet.ask("web"), fleet.ask("worker")
    assert web["env"] == {"LOG_LEVEL": "info"} and worker["env"] == {"WORKERS": "2"}
    assert web["file"] == "greeting=hello\npassword=s3cret\n"
    # The file holds a secret and the unit gave no mode: owner-only.
    ini = next((fleet.state / "apps" / "units" / "web").glob("*/conf/app.ini"))
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600

    # A device layer over the tenant's: only web uses log.level, so only web restarts.
    device = layer("device", DEVICE, 1, {"log.level": "debug"})
    second = fleet.give([*base_layers(), device])
    report = fleet.reported(second)
    assert report["config"]["digest"] == fleet.plane.spec["config"]["digest"]
    now_web, now_worker = fleet.ask("web"), fleet.ask("worker")
    assert now_web["env"] == {"LOG_LEVEL": "debug"} and now_web["pid"] != web["pid"]
    assert now_worker["pid"] == worker["pid"]

    # Only web's file changes, and web takes new files by SIGHUP: same process, new file.
    tenant = replace(base_layers(greeting="bonjour")[0][0], version=2)
    third = fleet.give([(tenant, {"db.password": "s3cret"}), device])
    fleet.reported(third)
    reloaded = wait_until(
        lambda: ((answer := fleet.ask("web")).get("reloads") == 1 and answer) or None, 30, "reload"
    )
    assert reloaded["pid"] == now_web["pid"]
    assert reloaded["file"] == "greeting=bonjour\npassword=s3cret\n"
    assert fleet.ask("worker")["pid"] == worker["pid"]
    assert "s3cret" not in fleet.agent.log()  # type: ignore[union-attr]


def test_a_tampered_layer_or_a_wrong_secret_is_refused_and_nothing_changes(fleet: Fleet) -> None:
    fleet.reported(fleet.give(base_layers()))
    applied = fleet.plane.spec["config"]["digest"]
    before = {name: fleet.ask(name)["pid"] for name in ("web", "worker")}

    # A value edited after the layer was signed.
    document = fleet.plane.document(fleet.bundle, base_layers(**{"log.level": "debug"}))
    document["config"]["layers"][0]["values"]["log.level"] = "trace"
    report = fleet.reported(fleet.plane.give(document), "failed")
    assert "config of tenant, version 1" in report["reason"]
    assert "does not match its signature" in report["reason"]
    assert report["config"]["status"] == "failed"

    # A secret whose value is not the one the layer's signed hash names.
    document = fleet.plane.document(fleet.bundle, base_layers(**{"log.level": "debug"}))
    document["config"]["secrets"]["db.password"] = "guess"
    report = fleet.reported(fleet.plane.give(document), "failed")
    assert (
        "secret db.password does not match the hash signed in tenant, version 1"
        in (report["reason"])
    )
    assert "guess" not in report["reason"]

    # A key a unit needs that no layer sets: refused before anything is touched.
    missing = [layer("tenant", "", 2, {"log.level": "info", "greeting": "hello"}, SECRET)]
    report = fleet.reported(fleet.give(missing), "failed")
    assert "unit worker needs config key workers, which no layer sets" in report["reason"]
    assert report["config"]["status"] == "failed"

    assert {name: fleet.ask(name)["pid"] for name in ("web", "worker")} == before
    assert fleet.ask("web")["env"] == {"LOG_LEVEL": "info"}
    # Once a good config comes, it is applied (the refusals left nothing behind).
    fixed = fleet.give(base_layers(workers=4))
    report = fleet.reported(fixed)
    assert report["config"]["status"] == "applied"
    assert report["config"]["digest"] != applied
    assert fleet.ask("worker")["env"] == {"WORKERS": "4"}
    assert fleet.ask("web")["pid"] == before["web"]


def test_a_unit_unhealthy_with_new_config_gets_the_previous_config_back(fleet: Fleet) -> None:
    fleet.reported(fleet.give(base_layers()))
    good = fleet.plane.spec["config"]["digest"]
    worker = fleet.ask("worker")["pid"]

    bad = fleet.give(base_layers(**{"log.level": "crash"}))
    tried = fleet.plane.spec["config"]["digest"]
    report = fleet.reported(bad, "failed")
    assert report["config"]["status"] == "failed" and report["config"]["digest"] == tried
    assert f"unit web turned unhealthy with config {tried}" in report["reason"]
    assert report["reason"].endswith("previous config put back")
    assert report["failed_unit"] == "web"
    assert any("LOG_LEVEL=crash" in line for line in report["failure_log"])
    # web runs again with the config it had; worker never noticed.
    assert wait_until(lambda: fleet.ask("web").get("env"), 30, "web back") == {"LOG_LEVEL": "info"}
    assert fleet.ask("worker")["pid"] == worker
    assert tried != good


def test_after_a_restart_the_applied_config_stays_and_an_older_generation_is_not_applied(
    fleet: Fleet,
) -> None:
    first = fleet.give(base_layers())
    fleet.reported(first)
    old = fleet.plane.spec
    second = fleet.give(base_layers(**{"log.level": "debug"}))
    fleet.reported(second)
    newer = fleet.plane.spec["config"]["digest"]
    web = fleet.ask("web")
    assert web["env"] == {"LOG_LEVEL": "debug"}

    assert fleet.agent is not None and fleet.agent.stop() == 0
    # The control plane now hands out the older generation (restored from a backup, say).
    with fleet.plane.lock:
        fleet.plane.generation, fleet.plane.spec = first, old
    fleet.start()
    report = fleet.reported(first)
    assert report["config"] == {"digest": newer, "status": "applied"}
    assert fleet.ask("web") == {**web, "reloads": 0}
