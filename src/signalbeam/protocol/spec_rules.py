"""Bundle spec rules that need no pydantic: patterns, durations and the cross-field checks.

The server's pydantic models (`bundle_v1`) and the agent's msgspec structs (`agent/spec`)
both read bundles; what they must agree on is written once here so it cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from signalbeam.protocol.config_v1 import MAX_DOCUMENT_BYTES, key_problem, template_keys

# Patterns in pydantic's dialect, where `$` matches only at the very end; `anchored` turns
# one into Python's for msgspec.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
URL_PATTERN = r"^https?://"
IMAGE_PATTERN = r"^[^\s]+$"
PORT_MAPPING_PATTERN = r"^(\d{1,3}(\.\d{1,3}){3}:)?\d{1,5}:\d{1,5}(/(tcp|udp))?$"
VOLUME_MAPPING_PATTERN = r"^[^:\s]+:/[^:\s]*(:(ro|rw))?$"

MAX_SECONDS = 86400.0
DURATION_HINT = "write a duration like 30s, 2m or 500ms"
# `:g` writes 0.00005 as 5e-05, so the exponent is read too: canonical text must read back.
_DURATION = re.compile(r"^(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_TCP_TARGET = re.compile(r"[A-Za-z0-9.:\[\]-]+:\d{1,5}")
# The same rules as JSON Schema, for the API document.
SECONDS_PATTERN = r"^\d{1,5}(\.\d{1,3})?(ms|s|m|h)?$"
TCP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 65535},
        {"type": "string", "pattern": r"^[A-Za-z0-9.:\[\]-]+:\d{1,5}$"},
        {"type": "null"},
    ]
}


def anchored(pattern: str) -> str:
    """`pattern` for Python's `re`, whose `$` also matches before a final newline."""
    return pattern.removesuffix("$") + r"\Z"


def parse_seconds(value: object) -> float:
    """`60s`, `2m`, `500ms` or a bare number of seconds; ValueError says how to write one."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(DURATION_HINT)


def format_seconds(value: float) -> str:
    """How the canonical form writes a duration."""
    return f"{value:g}s"


def probe_problem(http: object, tcp: object, exec_: object, running_for: object) -> str | None:
    """What is wrong with a health check's probes (exactly one, tcp well formed), if anything."""
    given = [
        name
        for name, value in (
            ("http", http),
            ("tcp", tcp),
            ("exec", exec_),
            ("running-for", running_for),
        )
        if value is not None
    ]
    if len(given) != 1:
        got = f" (got {', '.join(given)})" if given else ""
        return f"give exactly one of http, tcp, exec or running-for{got}"
    if isinstance(tcp, int) and not 0 < tcp < 65536:
        return "tcp: a port is a number from 1 to 65535"
    if isinstance(tcp, str) and not _TCP_TARGET.fullmatch(tcp):
        return "tcp: give a port (9000) or host:port (127.0.0.1:9000)"
    return None


def describe_probe(
    http: str | None, tcp: int | str | None, exec_: list[str] | None, running_for: float | None
) -> str:
    """A short human description of the probe, for reasons and logs."""
    if http is not None:
        return http
    if tcp is not None:
        return f"tcp {tcp}"
    if exec_ is not None:
        return "exec " + " ".join(exec_)
    return f"running for {running_for or 0:g}s"


def units_problem(names: Iterable[str]) -> str | None:
    """What is wrong with a bundle's unit names (none at all, or one used twice), if anything."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return f'the name "{name}" is used twice; containers and apps need unique names'
        seen.add(name)
    if not seen:
        return "a bundle needs at least one entry under containers or apps"
    return None


# How a changed unit replaces the copy that runs. `start-first` starts the new copy beside
# the old one, health-gates it, then stops the old one: nothing goes dark. `stop-first`
# stops the old copy first, for units two copies of which cannot run at once.
START_FIRST = "start-first"
STOP_FIRST = "stop-first"
UPDATE_ORDERS = (START_FIRST, STOP_FIRST)


def container_update_order(declared: str | None, ports: list[str]) -> str:
    """The order a container is replaced in: as declared, else start-first unless it
    publishes host ports (a host port can be bound by one copy only)."""
    if declared is not None:
        return declared
    return STOP_FIRST if ports else START_FIRST


def app_update_order(declared: str | None) -> str:
    """The order a native app is replaced in: start-first only when declared.

    The agent cannot see which port an app binds; a second copy that cannot bind it would
    exit, or worse pass an http check the old copy answers, so the safe default is stop-first.
    """
    return declared or STOP_FIRST


def update_order_problem(declared: str | None, ports: list[str]) -> str | None:
    """Why a container cannot have the update order it declares, if it cannot."""
    if declared == START_FIRST and ports:
        return (
            f"start-first runs two copies at once, but ports {', '.join(ports)} publish host "
            "ports only one copy can bind; remove ports (reach it by its unit name on the "
            "device network) or use stop-first"
        )
    return None


# Config a unit takes (protocol/config_v1.py): env vars from keys, files rendered from keys.
RELOAD_SIGNALS = ("SIGHUP", "SIGUSR1", "SIGUSR2")
FILE_MODE_PATTERN = r"^0?[0-7]{3}$"
MAX_CONFIG_FILES = 32
MAX_CONFIG_PATH = 255
MAX_TEMPLATE_CHARS = 64 * 1024
# Fields that are left out of every dump while unset, so bundles written before config
# existed keep their digests and units keep their fingerprints.
CONFIG_UNIT_FIELDS = ("config_env", "config_files", "reload_signal")


def app_file_problem(path: str) -> str | None:
    """Why `path` cannot name a file an app's config is rendered to (inside its directory)."""
    parts = path.split("/")
    if path.startswith("/"):
        return f"{path!r} is absolute; give a path relative to the app's directory"
    if any(part in ("", ".", "..") for part in parts) or "\0" in path:
        return f"{path!r} must stay inside the app's directory (no .., . or empty parts)"
    return None


def container_file_problem(path: str) -> str | None:
    """Why `path` cannot name a file mounted into a container (absolute, bind-mountable)."""
    if not path.startswith("/") or path == "/":
        return f"{path!r} is not an absolute path inside the container (like /etc/app.conf)"
    if any(part in ("", ".", "..") for part in path[1:].split("/")):
        return f"{path!r} must be a plain path (no .., . or empty parts)"
    if ":" in path or any(c.isspace() for c in path) or "\0" in path:
        return f"{path!r} cannot be mounted (no colons or spaces)"
    return None


def config_file_problem(key: str | None, template: str | None) -> str | None:
    """What is wrong with a config file's content source (exactly one of key and template)."""
    if (key is None) == (template is None):
        return "give exactly one of key or template"
    for used in template_keys(template or ""):
        if problem := key_problem(used):
            return f"template: {problem}"
    return None


def config_files_problem(paths: Iterable[str]) -> str | None:
    """Why a unit's config files clash (one path twice), if they do."""
    seen: set[str] = set()
    for path in paths:
        normal = str(PurePosixPath(path))
        if normal in seen:
            return f"the path {path} is used twice"
        seen.add(normal)
    return None


def config_env_problem(env: Mapping[str, str], config_env: Mapping[str, str] | None) -> str | None:
    """Why a unit's env and config_env clash (one variable in both), if they do."""
    both = sorted(set(env) & set(config_env or {}))
    if both:
        return f"{', '.join(both)} is set in both env and config_env; keep one"
    return None


def file_mode(mode: str | None, secret: bool) -> int:
    """The mode a rendered file gets: as written, else 0600 holding a secret, else 0644."""
    if mode is not None:
        return int(mode, 8)
    return 0o600 if secret else 0o644


def config_schema_problem(schema: Any) -> str | None:
    """What rules a bundle's `config_schema` out before a full JSON Schema check, if anything."""
    if not isinstance(schema, Mapping):
        return "a config schema is a JSON Schema object"
    size = len(json.dumps(schema, separators=(",", ":")).encode())
    if size > MAX_DOCUMENT_BYTES:
        return f"the config schema is {size} bytes; at most {MAX_DOCUMENT_BYTES}"
    declared = schema.get("type", "object")
    if declared != "object" and not (isinstance(declared, list) and "object" in declared):
        return "a config schema describes an object (type: object)"
    return None
