"""The systemd unit that keeps the agent running across crashes and reboots."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from signalbeam.agent.identity import write_private

UNIT_NAME = "signalbeam-agent.service"
UNIT_DIR = Path("/etc/systemd/system")
Runner = Callable[[Sequence[str]], None]


class ServiceError(Exception):
    """The unit could not be installed; the message says what to do."""


def agent_command() -> list[str]:
    """How to start this agent: the console script when on PATH, else this Python."""
    script = shutil.which("signalbeam-agent")
    return [script] if script else [sys.executable, "-m", "signalbeam.agent"]


def unit_text(command: Sequence[str], state_dir: Path) -> str:
    """The unit file for `command run --state-dir state_dir`."""
    exec_start = shlex.join([*command, "run", "--state-dir", str(state_dir)])
    state_directory = ""
    if state_dir == Path("/var/lib/signalbeam-agent"):
        state_directory = "StateDirectory=signalbeam-agent\nStateDirectoryMode=0700\n"
    return f"""[Unit]
Description=SignalBeam agent: reports device health and applies its desired state
Wants=network-online.target
After=network-online.target
# Never stop restarting: a device nobody can reach must come back by itself.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={exec_start}
Restart=always
RestartSec=5
# Exit status 3: the server refused this device for good (credential revoked, device
# decommissioned). Restarting would only hammer the server; `signalbeam-agent status` says why.
RestartPreventExitStatus=3
# Under memory pressure the agent should be the last to go: it is how you find out why.
OOMScoreAdjust=-500
Environment=PYTHONUNBUFFERED=1
{state_directory}
[Install]
WantedBy=multi-user.target
"""


def _systemctl(args: Sequence[str]) -> None:
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise ServiceError("systemctl not found: this system does not run systemd")
    result = subprocess.run([systemctl, *args], capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise ServiceError(f"systemctl {' '.join(args)} failed: {reason}")


def install(text: str, unit_dir: Path = UNIT_DIR, run: Runner = _systemctl) -> Path:
    """Write the unit, reload systemd and enable and start the agent; return the unit path."""
    path = unit_dir / UNIT_NAME
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, text.encode())
        path.chmod(0o644)
    except PermissionError as err:
        raise ServiceError(f"cannot write {path} ({err.strerror}); run it with sudo") from err
    except OSError as err:
        raise ServiceError(f"cannot write {path}: {err}") from err
    run(["daemon-reload"])
    run(["enable", "--now", UNIT_NAME.removesuffix(".service")])
    return path
