"""Who this agent is: state dir, stable device id, and the credential stored with mode 0600."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

IDENTITY_FILE = "identity.json"
DEVICE_ID_FILE = "device-id"
MACHINE_ID_PATHS = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
# machine-id(5) asks applications not to expose the machine id itself but a keyed hash of it
# under an application-specific key, so the id a server sees cannot be tied to other apps.
APP_KEY = b"signalbeam-agent device id v1"


class IdentityError(Exception):
    """The stored identity is missing or unusable; the message says what to do."""


@dataclass(frozen=True, kw_only=True)
class Identity:
    """What enrollment gave this device; the credential never appears in reprs or logs."""

    server: str
    device_id: str
    credential: str = field(repr=False)
    server_keys: list[str] = field(default_factory=list)
    name: str | None = None
    enrolled_at: datetime


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state dir (mode 0700) when missing; return it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return state_dir


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, readable only by its owner (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically with mode 0600."""
    write_private(path, json.dumps(value, indent=2, sort_keys=True, default=str).encode() + b"\n")


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def load_identity(state_dir: Path) -> Identity:
    """The stored identity, or an error telling the user to register."""
    path = state_dir / IDENTITY_FILE
    data = read_json(path)
    if data is None:
        raise IdentityError(
            f"this device is not registered (no {path}); run "
            "`signalbeam-agent register --server URL --token TOKEN` first"
        )
    try:
        # Keys a newer agent added are ignored; a missing or mistyped one makes it unusable.
        return msgspec.convert(data, Identity, strict=False)
    except msgspec.ValidationError as err:
        raise IdentityError(
            f"{path} is damaged ({err}); register again with `signalbeam-agent register`"
        ) from err


def save_identity(state_dir: Path, identity: Identity) -> Path:
    """Store the identity (credential included) with mode 0600."""
    path = ensure_state_dir(state_dir) / IDENTITY_FILE
    write_json(path, msgspec.to_builtins(identity))
    return path


def _machine_id(paths: Sequence[Path]) -> bytes | None:
    for path in paths:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if len(text) == 32:
            with contextlib.suppress(ValueError):
                return bytes.fromhex(text)
    return None


def derive_device_id(state_dir: Path, machine_id_paths: Sequence[Path] = MACHINE_ID_PATHS) -> str:
    """A stable id: a keyed hash of the machine id, else a generated id kept in the state dir."""
    machine = _machine_id(machine_id_paths)
    if machine is not None:
        return hmac.new(machine, APP_KEY, hashlib.sha256).hexdigest()[:32]
    path = state_dir / DEVICE_ID_FILE
    with contextlib.suppress(OSError):
        stored = path.read_text().strip()
        if stored:
            return stored
    generated = uuid.uuid4().hex
    write_private(ensure_state_dir(state_dir) / DEVICE_ID_FILE, generated.encode() + b"\n")
    return generated
