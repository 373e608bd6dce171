"""The agent never loads pydantic: it costs a small device about 10 MB of its 40 MB budget.

Real agent commands run with PYTHONPROFILEIMPORTTIME, which makes Python name every module
it imports on stderr, lazy imports included; a pydantic import anywhere on the way (the
agent's own modules, or a library such as Typer that validates with it) shows up there.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import signalbeam.agent
from tests.agent.bundle_support import (
    ArtifactServer,
    assign,
    push,
    relay,
    serve_artifacts,
    wait_reported,
)
from tests.agent.support import AGENT, Admin, Agents, agent_env, register
from tests.components import free_port
from tests.conftest import LiveServer

# Typer is here too: it loads pydantic to check command-line parameters.
HEAVY = ("pydantic", "pydantic_core", "typer")


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    yield from serve_artifacts()


def imported(stderr: str) -> set[str]:
    """Module names from `-X importtime` lines."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(modules: Iterable[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_no_agent_module_imports_pydantic() -> None:
    # Every module, including those only some commands or failures load.
    names = [
        f"signalbeam.agent.{m.name}"
        for m in pkgutil.iter_modules(signalbeam.agent.__path__)
        if m.name != "__main__"
    ]
    code = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "signalbeam.agent.registration" in loaded
    assert heavy(loaded) == []


def test_register_run_and_status_never_load_pydantic(
    fast_server: LiveServer, admin: Admin, agents: Agents, artifacts: ArtifactServer, tmp_path: Path
) -> None:
    env = {**agent_env(interval="1"), "PYTHONPROFILEIMPORTTIME": "1"}
    state = tmp_path / "lean-1"
    done = register(
        state,
        admin.enrollment_token(),
        "--server",
        fast_server.url,
        "--device-id",
        "lean-1",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert heavy(imported(done.stderr)) == []

    # A signed native-app bundle, applied and health-checked: every lazy import on the way.
    agent = agents.start(state, env)
    port, flag = free_port(), tmp_path / "flag"
    flag.touch()
    push(admin, relay("1.0.0", artifacts, port, flag))
    assign(admin, "relay@1.0.0", devices=["lean-1"])
    wait_reported(admin, "lean-1", "running", "1.0.0")
    status = subprocess.run(
        [*AGENT, "status", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert heavy(imported(status.stderr)) == []
    assert agent.stop() == 0
    flag.unlink()

    ran = imported(agent.log())
    assert {"signalbeam.agent.apps", "signalbeam.protocol.signing"} <= ran, "the path was taken"
    assert heavy(ran) == []
