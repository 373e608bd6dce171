"""A native app's record (`units/<name>/unit.json`): what runs, so a restarted agent adopts it."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signalbeam.agent.units import RestartPolicy, UnitState

log = logging.getLogger(__name__)
RECORD = "unit.json"


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class AppSettings:
    """How the driver supervises: restarts, stop grace, polling, log rotation."""

    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_timeout: float = 10.0
    poll_interval: float = 1.0
    log_max_bytes: int = 1 << 20
    log_backups: int = 3


@dataclass
class AppRecord:
    """What runs for one app, kept in `unit.json` so that a restarted agent adopts it."""

    name: str
    owner: str
    fingerprint: str
    bundle: str
    sha256: str
    command: list[str]
    env: dict[str, str]
    state: UnitState = UnitState.STARTING
    pid: int | None = None
    start_time: int | None = None  # clock ticks after boot, from /proc/<pid>/stat
    since: datetime = field(default_factory=now)
    restart_count: int = 0
    exit_code: int | None = None
    last_error: str | None = None
    update_order: str | None = None  # how this copy replaced the one before it

    def dumps(self) -> str:
        """The record as JSON."""
        return json.dumps({**asdict(self), "since": self.since.isoformat()}, indent=2)

    @classmethod
    def loads(cls, text: str) -> AppRecord:
        """Parse `dumps` output; raises ValueError, KeyError or TypeError when damaged."""
        data: dict[str, Any] = json.loads(text)
        data["since"] = datetime.fromisoformat(data["since"])
        data["state"] = UnitState(data["state"])
        # Keys a newer agent added are left out rather than making the record unreadable.
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def read_record(path: Path) -> AppRecord | None:
    """The record at `path`; None when missing or damaged (a damaged one is logged)."""
    try:
        return AppRecord.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring damaged %s: %s", path, err)
        return None
