"""How the CLI shows rollouts: the list, the detail, and one progress line per change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text

from signalbeam.cli.output import Cell, ago, details, table
from signalbeam.cli.views import failure_log

LIST_COLUMNS = ["ID", "BUNDLE", "STATUS", "TARGET", "WAVE", "DONE", "FAILED", "CREATED", "BY"]
WAVE_COLUMNS = ["WAVE", "SIZE", "DEVICES", "PENDING", "UPDATING", "SUCCEEDED", "FAILED", "SKIPPED"]
DEVICE_COLUMNS = ["DEVICE", "WAVE", "STATUS", "ATTEMPTS", "SINCE", "REASON"]
STYLES = {
    "running": "cyan",
    "updating": "cyan",
    "soaking": "cyan",
    "succeeded": "green",
    "completed": "green",
    "failed": "red",
    "halted": "red",
    "rolled_back": "red",
    "paused": "yellow",
    "skipped": "yellow",
    "cancelled": "yellow",
}
BAR_WIDTH = 20
# Lines of a failed unit's log `rollouts show` prints per failed device (--verbose: all).
FAILURE_LINES = 5


def styled(value: str) -> Text:
    """A status as coloured text, so it reads without colour too."""
    return Text(value, style=STYLES.get(value, ""))


def ref(rollout: dict[str, Any]) -> str:
    """`bundle@version`."""
    return f"{rollout['bundle']}@{rollout['version']}"


def target(document: dict[str, Any]) -> str:
    """`group kiosks`, `selector env=prod` or `devices pi-1, pi-2`."""
    if "group" in document:
        return f"group {document['group']}"
    if "selector" in document:
        return f"selector {document['selector']}"
    devices = document.get("devices") or []
    listed = ", ".join(devices[:3]) + (f" and {len(devices) - 3} more" if len(devices) > 3 else "")
    return f"devices {listed}"


def updating(counts: dict[str, int]) -> int:
    """Devices given the version that have not finished (soaking counts as updating)."""
    return counts["updating"] + counts["soaking"]


def _row(rollout: dict[str, Any]) -> list[Cell]:
    counts = rollout["counts"]
    return [
        str(rollout["id"]),
        ref(rollout),
        styled(rollout["status"]),
        target(rollout["target"]),
        f"{rollout['wave']}/{rollout['wave_count']}",
        str(counts["succeeded"]),
        str(counts["failed"]),
        ago(rollout["created_at"]),
        rollout["created_by"],
    ]


def rollout_table(rollouts: Iterable[dict[str, Any]]) -> RenderableType:
    """The `rollouts ls` table."""
    return table(LIST_COLUMNS, [_row(rollout) for rollout in rollouts])


def _policy(policy: dict[str, Any]) -> str:
    parts = [
        f"waves {policy['waves']}",
        f"failure threshold {policy['failure_threshold']}",
        f"soak {policy['soak_seconds']:g}s",
        f"on failure {policy['on_failure']}",
    ]
    if policy.get("max_parallel"):
        parts.append(f"max {policy['max_parallel']} at once")
    if policy.get("window"):
        parts.append(f"window {policy['window']}")
    return ", ".join(parts)


def _summary(rollout: dict[str, Any]) -> list[tuple[str, Cell]]:
    pairs: list[tuple[str, Cell]] = [
        ("status", styled(rollout["status"])),
        ("target", target(rollout["target"])),
        ("wave", f"{rollout['wave']} of {rollout['wave_count']}"),
        ("policy", _policy(rollout["policy"])),
        ("created", f"{ago(rollout['created_at'])} by {rollout['created_by']}"),
    ]
    if rollout["reason"]:
        pairs.insert(1, ("reason", rollout["reason"]))
    return pairs


def _wave_row(wave: dict[str, Any]) -> list[Cell]:
    counts = wave["counts"]
    started = wave["started"]
    return [
        str(wave["number"]),
        wave["size"],
        str(wave["devices"]) if started else "-",
        str(counts["pending"]),
        str(updating(counts)),
        str(counts["succeeded"]),
        str(counts["failed"]),
        str(counts["skipped"]),
    ]


def _device_row(device: dict[str, Any]) -> list[Cell]:
    return [
        device["device_id"],
        str(device["wave"]),
        styled(device["status"]),
        str(device["attempts"]),
        ago(device["since"]),
        device["reason"] or "-",
    ]


def rollout_detail(rollout: dict[str, Any], verbose: bool = False) -> RenderableType:
    """The `rollouts show` view: summary, one row per wave, one row per device, then each
    failed device's reason and the last lines of the unit that failed (all with `verbose`)."""
    title = f"rollout {rollout['id']}: {ref(rollout)}"
    parts: list[RenderableType] = [details(_summary(rollout), title=title), Text()]
    parts.append(table(WAVE_COLUMNS, [_wave_row(wave) for wave in rollout["waves"]]))
    if rollout["devices"]:
        parts += [Text(), table(DEVICE_COLUMNS, [_device_row(d) for d in rollout["devices"]])]
    parts += failed_devices(rollout["devices"], None if verbose else FAILURE_LINES)
    return Group(*parts)


def failed_devices(devices: Iterable[dict[str, Any]], last: int | None) -> list[RenderableType]:
    """Each failed device's reason in full (the table may cut it) and its unit's last lines."""
    failed = [device for device in devices if device["status"] == "failed"]
    parts: list[RenderableType] = []
    for device in failed:
        reason = device["reason"] or "no reason recorded"
        heading = Text.assemble((device["device_id"], "bold"), " failed: ", reason)
        parts += [Text(), heading, *[Padding(p, (0, 0, 0, 2)) for p in failure_log(device, last)]]
    if last is not None and any(len(d.get("failure_log") or []) > last for d in failed):
        parts += [Text(), Text("Every line: signalbeam rollouts show ID --verbose", style="dim")]
    return parts


def progress_line(rollout: dict[str, Any]) -> str:
    """One line of progress: a bar of succeeded devices and the counts, for `rollouts watch`."""
    counts = rollout["counts"]
    total = sum(counts.values())
    done = counts["succeeded"]
    filled = round(BAR_WIDTH * done / total) if total else 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return (
        f"[{bar}] {rollout['status']:<11} wave {rollout['wave']}/{rollout['wave_count']}  "
        f"{done}/{total} succeeded, {updating(counts)} updating, {counts['pending']} pending, "
        f"{counts['failed']} failed, {counts['skipped']} skipped"
    )
