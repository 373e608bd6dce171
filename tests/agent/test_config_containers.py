"""Config reaches a real Podman container: env added, a rendered file mounted read-only.

The container prints the variable and the mounted file when it starts, so its log is what
it actually saw; a config change replaces it and the new log shows the new value.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signalbeam.agent.containers import container_name
from tests.agent.config_plane import ConfigPlane, config_plane, layer
from tests.agent.support import Agents, agent_env, register, wait_until
from tests.engine import Engine, engine

__all__ = ["engine"]

DEVICE = "config-box-1"
SAYS = 'echo "greeting=$GREETING file=$(cat /etc/site/motd)"; exec sleep 3600'


@pytest.fixture
def plane() -> Iterator[ConfigPlane]:
    with config_plane() as served:
        yield served


def bundle(image: str) -> dict[str, Any]:
    return {
        "name": "box",
        "version": "1.0.0",
        "containers": [
            {
                "name": "web",
                "image": image,
                "command": ["sh", "-c", SAYS],
                "config_env": {"GREETING": "greeting"},
                "config_files": [{"path": "/etc/site/motd", "key": "motd", "mode": "0644"}],
                "health": {"exec": ["cat", "/etc/site/motd"], "timeout": "10s"},
            }
        ],
    }


def test_a_container_gets_config_env_and_a_read_only_file(
    plane: ConfigPlane, agents: Agents, engine: Engine, tmp_path: Path
) -> None:
    engine.remove_owned(DEVICE)
    state = tmp_path / DEVICE
    done = register(state, "token", "--server", plane.url, "--device-id", DEVICE)
    assert done.returncode == 0, done.stderr
    agent = agents.start(state, agent_env(interval="1", container_socket=engine.socket))
    spec = bundle(engine.image("sb/config-box", "1.0.0"))
    name = container_name(DEVICE, "web")

    def said(text: str) -> bool:
        return text in engine.podman("logs", name, check=False).stdout

    def running(generation: int) -> dict[str, Any] | None:
        now = plane.last()
        return (
            now if (now.get("generation"), now.get("status")) == (generation, "running") else None
        )

    first = plane.give(
        plane.document(spec, [layer("tenant", "", 1, {"greeting": "hi", "motd": "v1"})])
    )
    try:
        report = wait_until(lambda: running(first), 90, "the container to run")
        assert report["config"]["status"] == "applied"
        assert wait_until(lambda: said("greeting=hi file=v1"), 30, "the container's first words")
        # Mounted read-only: the container cannot change what the agent rendered.
        wrote = engine.podman("exec", name, "sh", "-c", "echo x > /etc/site/motd", check=False)
        assert wrote.returncode != 0
        rendered = state / "rendered-config"
        assert stat.S_IMODE(rendered.stat().st_mode) == 0o700

        second = plane.give(
            plane.document(spec, [layer("tenant", "", 2, {"greeting": "hi", "motd": "v2"})])
        )
        wait_until(lambda: running(second), 90, "the new config to run")
        assert wait_until(lambda: said("greeting=hi file=v2"), 30, "the new file inside")
        assert not said("file=v1"), "the container was not replaced"
    finally:
        agent.stop()
        engine.remove_owned(DEVICE)
