"""The simulator's state file: device credentials kept so a restart does not re-enroll."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import orjson

STATE_DIR = Path(".signalbeam-sim")
FORMAT_VERSION = 1


class StateFileError(Exception):
    """The state file exists but cannot be used; the message says what to do."""


def default_state_file(server_url: str, directory: Path = STATE_DIR) -> Path:
    """`./.signalbeam-sim/<host>_<port>.json` for this server URL."""
    parts = urlsplit(server_url)
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return directory / f"{host}_{port}.json"


def load(path: Path, server_url: str) -> dict[str, str]:
    """Device id -> credential from the state file; empty when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise StateFileError(f"cannot read simulator state file {path}: {err}") from err
    try:
        data = orjson.loads(raw)
        devices = data["devices"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as err:
        raise StateFileError(
            f"simulator state file {path} is not valid; delete it to enroll devices afresh"
        ) from err
    if data.get("server") not in (None, server_url):
        raise StateFileError(
            f"simulator state file {path} belongs to {data['server']}, not {server_url}; "
            "pass another --state-file or delete it"
        )
    return {str(device_id): str(credential) for device_id, credential in devices.items()}


def save(path: Path, server_url: str, identities: dict[str, str]) -> None:
    """Write the state file atomically, readable by its owner only (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = orjson.dumps(
        {"version": FORMAT_VERSION, "server": server_url, "devices": identities},
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
