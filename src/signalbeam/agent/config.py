"""Agent settings: defaults, then `agent.toml`, then `SIGNALBEAM_AGENT_*`, then flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the setting and the source."""


class AgentSettings(BaseModel):
    """Everything the agent can be told; defaults suit a Raspberry Pi."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str | None = None
    interval: float = Field(default=15.0, ge=0.1, le=3600)
    state_dir: Path
    log_level: str = "info"
    outbox_max_samples: int = Field(default=10_000, ge=1, le=10_000_000)
    outbox_batch_size: int = Field(default=500, ge=1, le=500)
    mdns_interface: list[str] = []
    watch_timeout: float = Field(default=30.0, ge=1, le=60)
    request_timeout: float = Field(default=30.0, ge=0.5, le=300)
    # The Docker Engine API endpoint (Docker or Podman); None: DOCKER_HOST, then the usual sockets.
    container_socket: str | None = None

    @field_validator("interval", "watch_timeout", "request_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value).total_seconds()
            except InvalidInput as err:
                raise ValueError(err.detail) from err
        return value

    @field_validator("state_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("server")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f'"{value}" is not a server URL; write it like http://host:8420')
        return value.strip().rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @field_validator("mdns_interface", mode="before")
    @classmethod
    def _interfaces(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            names = [p.strip() for item in value for p in str(item).split(",") if p.strip()]
            return [] if names == ["all"] else names
        return value

    @property
    def config_file(self) -> Path:
        """Where this agent's agent.toml lives."""
        return self.state_dir / CONFIG_FILE


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


def _describe(error: Any, sources: Mapping[str, str]) -> str:
    key = str(error["loc"][0]) if error["loc"] else "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key} ({sources.get(key, 'default')}): {message}"


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
    try:
        return AgentSettings(**values)
    except ValidationError as err:
        problems = "; ".join(_describe(e, sources) for e in err.errors())
        raise ConfigError(f"invalid agent settings: {problems}") from err


def load(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> AgentSettings:
    """Resolve the settings: the state dir (flag, env, default) says where agent.toml is."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = from_env(os.environ if environ is None else environ)
    where = Path(flags.get("state_dir") or env.get("state_dir") or default_state_dir())
    path = where.expanduser() / CONFIG_FILE
    return merge(read_file(path), env, flags, str(path))
