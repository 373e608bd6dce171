"""What the agent remembers between runs: its status and the last desired state it received."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from signalbeam.agent.identity import ensure_state_dir, read_json, write_json
from signalbeam.agent.wire import DesiredState, ReportedState, convert, to_json

log = logging.getLogger(__name__)
STATUS_FILE = "status.json"
DESIRED_FILE = "desired.json"
T = TypeVar("T")


class AgentStatus(msgspec.Struct, kw_only=True):
    """The agent's own account of how it is doing; `signalbeam-agent status` prints it.

    Keys this version does not know (written by a newer agent) are ignored when read.
    """

    server: str | None = None
    device_id: str | None = None
    pid: int | None = None
    running: bool = False
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    desired_generation: int | None = None
    reported: ReportedState | None = None
    stop_reason: str | None = None
    sync_interval_seconds: float | None = None
    clock_offset_seconds: float | None = None
    samples_taken: int = 0
    samples_synced: int = 0
    samples_queued: int = 0
    # The server said it deduplicates sync heartbeats by seq; kept, so the first sync after a
    # restart already uses it.
    heartbeat_seq: bool = False


def _load(path: Path, kind: type[T]) -> T | None:
    data = read_json(path)
    if data is None:
        return None
    try:
        return convert(data, kind)
    except msgspec.ValidationError:
        log.warning("ignoring damaged %s; it will be rewritten", path)
        return None


def load_status(state_dir: Path) -> AgentStatus:
    """The status last written, or a blank one."""
    return _load(state_dir / STATUS_FILE, AgentStatus) or AgentStatus()


def load_desired(state_dir: Path) -> DesiredState | None:
    """The last desired state the server sent, kept so the device runs it while offline."""
    return _load(state_dir / DESIRED_FILE, DesiredState)


class StateStore:
    """Writes status and desired state; a full or read-only disk costs one log line, not a crash."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.status = load_status(state_dir)
        self._failing = False

    def save_status(self) -> bool:
        """Persist the status; False when the disk refused."""
        return self._write(STATUS_FILE, to_json(self.status))

    def save_desired(self, desired: DesiredState) -> bool:
        """Persist the desired state; False when the disk refused."""
        return self._write(DESIRED_FILE, to_json(desired))

    def _write(self, name: str, value: object) -> bool:
        try:
            write_json(ensure_state_dir(self.state_dir) / name, value)
        except OSError as err:
            if not self._failing:
                log.error(
                    "cannot write %s in %s (%s); carrying on in memory", name, self.state_dir, err
                )
            self._failing = True
            return False
        if self._failing:
            log.info("writing to %s works again", self.state_dir)
        self._failing = False
        return True
