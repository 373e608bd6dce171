"""Agent settings: defaults, then `agent.toml`, then `SIGNALBEAM_AGENT_*`, then flags."""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import InvalidInput

ENV_PREFIX = "SIGNALBEAM_AGENT_"
CONFIG_FILE = "agent.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")
# Every setting, as it is spelled in agent.toml; the environment variable is the upper-case
# name behind the prefix (SIGNALBEAM_AGENT_OUTBOX_MAX_SAMPLES).
KEYS = (
    "server",
    "interval",
    "state_dir",
    "log_level",
    "outbox_max_samples",
    "outbox_batch_size",
    "mdns_interface",
    "watch_timeout",
    "request_timeout",
    "container_socket",
    "remote_access",
    "session_user",
    "log_host_units",
    "max_sessions",
    "session_idle_timeout",
    "reboot_command",
    "boot_id_file",
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the setting and the source."""


@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent can be told; defaults suit a Raspberry Pi."""

    state_dir: Path
    server: str | None = None
    interval: float = 15.0
    log_level: str = "info"
    outbox_max_samples: int = 10_000
    outbox_batch_size: int = 500
    mdns_interface: list[str] = field(default_factory=list)
    watch_timeout: float = 30.0
    request_timeout: float = 30.0
    # The Docker Engine API endpoint (Docker or Podman); None: DOCKER_HOST, then the usual sockets.
    container_socket: str | None = None
    # Sessions (protocol/sessions.py). Exec, shells, copies and forwards are the device owner's
    # to allow: off unless this is true, whatever the control plane says.
    remote_access: bool = False
    # Run sessions as this user (when the agent runs as root); None: the agent's own user.
    session_user: str | None = None
    # Host systemd units whose journal operators may read, e.g. ["nginx.service"].
    log_host_units: list[str] = field(default_factory=list)
    max_sessions: int = 4
    session_idle_timeout: float = 600.0
    # What the reboot action runs (split like a shell would, no shell involved).
    reboot_command: str = "systemctl reboot"
    # Where the kernel says which boot this is; a new id after a reboot action confirms it.
    boot_id_file: Path = Path("/proc/sys/kernel/random/boot_id")

    @property
    def config_file(self) -> Path:
        """Where this agent's agent.toml lives."""
        return self.state_dir / CONFIG_FILE


def _server(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError("must be text, a URL like http://host:8420")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f'"{value}" is not a server URL; write it like http://host:8420')
    return value.strip().rstrip("/")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _state_dir(value: object) -> Path:
    if not isinstance(value, str | Path):
        raise ValueError("must be a directory path")
    return Path(value).expanduser()


def _file(value: object) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a file path")
    return Path(value).expanduser()


def _command(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a command line, e.g. "systemctl reboot"')
    try:
        words = shlex.split(value)
    except ValueError as err:
        raise ValueError(f"is not a command line: {err}") from err
    if not words:
        raise ValueError('must name a command, e.g. "systemctl reboot"')
    return value


def _log_level(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value.lower()


def _interfaces(value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("must be a list of interface addresses, or all")
    names = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    return [] if names == ["all"] else names


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _names(value: object) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError('must be a list of unit names, e.g. ["nginx.service"]')
    return [item.strip() for item in items if item.strip()]


def _duration(low: float, high: float) -> Callable[[object], float]:
    def read(value: object) -> float:
        if isinstance(value, str):
            try:
                seconds = parse_duration(value).total_seconds()
            except InvalidInput as err:
                raise ValueError(err.detail) from err
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise ValueError("must be a duration like 15s or 2m")
        if not low <= seconds <= high:
            raise ValueError(f"must be from {low:g}s to {high:g}s")
        return seconds

    return read


def _count(low: int, high: int) -> Callable[[object], int]:
    def read(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            number = int(value.strip())
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if number is None:
            raise ValueError("must be a whole number")
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high}")
        return number

    return read


# How each setting is read from whatever the file, environment or command line gave; every
# reader raises ValueError with a message that completes "setting (source): ...".
READERS: dict[str, Callable[[object], Any]] = {
    "server": _server,
    "interval": _duration(0.1, 3600),
    "state_dir": _state_dir,
    "log_level": _log_level,
    "outbox_max_samples": _count(1, 10_000_000),
    "outbox_batch_size": _count(1, 500),
    "mdns_interface": _interfaces,
    "watch_timeout": _duration(1, 60),
    "request_timeout": _duration(0.5, 300),
    "container_socket": _text,
    "remote_access": _flag,
    "session_user": _text,
    "log_host_units": _names,
    "max_sessions": _count(1, 64),
    "session_idle_timeout": _duration(10, 86400),
    "reboot_command": _command,
    "boot_id_file": _file,
}


def default_state_dir() -> Path:
    """`/var/lib/signalbeam-agent` for root, else the user's XDG state directory."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/signalbeam-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "signalbeam-agent"


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given as SIGNALBEAM_AGENT_* variables (empty ones count as unset)."""
    found = {key: environ.get(ENV_PREFIX + key.upper(), "") for key in KEYS}
    return {key: value for key, value in found.items() if value != ""}


def read_file(path: Path) -> dict[str, Any]:
    """The settings in agent.toml, or nothing when there is no such file."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from err
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {', '.join(unknown)}; known settings: {', '.join(KEYS)}"
        )
    return data


def merge(
    file: Mapping[str, Any], env: Mapping[str, Any], flags: Mapping[str, Any], file_name: str
) -> AgentSettings:
    """Settings with flags over environment over file over defaults."""
    values: dict[str, Any] = {"state_dir": default_state_dir()}
    sources: dict[str, str] = {}
    layers = ((file_name, file), ("environment", env), ("command line", flags))
    for source, layer in layers:
        for key, value in layer.items():
            if value is not None:
                values[key] = value
                sources[key] = source
    read: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        try:
            read[key] = READERS[key](value)
        except ValueError as err:
            problems.append(f"{key} ({sources.get(key, 'default')}): {err}")
    if problems:
        raise ConfigError(f"invalid agent settings: {'; '.join(problems)}")
    return AgentSettings(**read)


def load(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> AgentSettings:
    """Resolve the settings: the state dir (flag, env, default) says where agent.toml is."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = from_env(os.environ if environ is None else environ)
    where = Path(flags.get("state_dir") or env.get("state_dir") or default_state_dir())
    path = where.expanduser() / CONFIG_FILE
    return merge(read_file(path), env, flags, str(path))


def write_flag(path: Path, key: str, value: bool) -> None:
    """Set one true/false setting in agent.toml, keeping the rest of the file as it was."""
    lines = path.read_text().splitlines() if path.exists() else []
    line = f"{key} = {'true' if value else 'false'}"
    for index, old in enumerate(lines):
        if old.split("=", 1)[0].strip() == key:
            lines[index] = line
            break
    else:
        # Top-level keys go before any [table], or TOML would read them as the table's.
        tables = [i for i, old in enumerate(lines) if old.lstrip().startswith("[")]
        lines.insert(tables[0] if tables else len(lines), line)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    read_file(path)  # what was written must still be a valid agent.toml
