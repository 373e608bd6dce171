"""`signalbeam-agent status`: what the agent knows, from its state dir, as text or JSON."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signalbeam.agent.identity import IdentityError, load_identity
from signalbeam.agent.outbox import OUTBOX_FILE, read_counts
from signalbeam.agent.state import load_status


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gather(state_dir: Path) -> dict[str, Any]:
    """Everything `status` shows, as plain JSON-ready values."""
    status = load_status(state_dir)
    try:
        identity = load_identity(state_dir)
    except IdentityError:
        identity = None
    counts = read_counts(state_dir / OUTBOX_FILE)
    reported = status.reported
    return {
        "state_dir": str(state_dir),
        "registered": identity is not None,
        "server": status.server or (identity.server if identity else None),
        "device_id": identity.device_id if identity else status.device_id,
        "running": status.running and _alive(status.pid),
        "pid": status.pid,
        "started_at": _iso(status.started_at),
        "stopped_at": _iso(status.stopped_at),
        "last_sync_at": _iso(status.last_sync_at),
        "last_error": status.last_error,
        "stop_reason": status.stop_reason,
        "desired_generation": status.desired_generation,
        "current_generation": reported.generation if reported else None,
        "reported_status": reported.status if reported else None,
        "reported_reason": reported.reason if reported else None,
        "sync_interval_seconds": status.sync_interval_seconds,
        "clock_offset_seconds": status.clock_offset_seconds,
        "queued_samples": counts.samples if counts else 0,
        "queued_events": counts.events if counts else 0,
        "dropped_samples_unreported": counts.dropped_samples if counts else 0,
        "samples_taken": status.samples_taken,
        "samples_synced": status.samples_synced,
        "samples_queued": status.samples_queued,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ago(text: str | None) -> str:
    if text is None:
        return "never"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(text)).total_seconds()
    return f"{text} ({max(0, seconds):.0f} s ago)"


def _process(info: dict[str, Any]) -> str:
    if info["running"]:
        return f"running (pid {info['pid']})"
    if info["stopped_at"]:
        return f"stopped at {info['stopped_at']}"
    return "not running"


def render(info: dict[str, Any]) -> str:
    """The status as aligned `label: value` lines."""
    if not info["registered"]:
        return (
            f"not registered (state dir {info['state_dir']}); run "
            "`signalbeam-agent register --server URL --token TOKEN`"
        )
    current = info["current_generation"]
    rows = [
        ("server", info["server"]),
        ("device id", info["device_id"]),
        ("agent", _process(info)),
        ("last sync", _ago(info["last_sync_at"])),
        ("desired generation", info["desired_generation"]),
        (
            "current generation",
            f"{current} ({info['reported_status']})" if current is not None else None,
        ),
        ("queued", f"{info['queued_samples']} samples, {info['queued_events']} events"),
        ("dropped samples", info["dropped_samples_unreported"] or None),
        (
            "samples",
            f"{info['samples_taken']} taken, {info['samples_synced']} synced, "
            f"{info['samples_queued']} queued while offline",
        ),
        ("last error", info["last_error"]),
        ("stopped because", info["stop_reason"]),
        ("state dir", info["state_dir"]),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(
        f"{label + ':':<{width}} {value}" for label, value in rows if value is not None
    )
