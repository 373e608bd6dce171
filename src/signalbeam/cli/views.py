"""How devices and events look in a terminal: tables and detail blocks built from API JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from signalbeam.cli.output import Cell, ago, details, labels_text, local_time, percent, table
from signalbeam.domain.durations import format_duration

PRESENCE_STYLES = {"online": "green", "offline": "red", "new": "yellow", "decommissioned": "dim"}
STATUS_STYLES = {"running": "green", "applying": "cyan", "degraded": "yellow", "failed": "red"}
DEVICE_COLUMNS = [
    "ID",
    "NAME",
    "PRESENCE",
    "LAST SEEN",
    "BUNDLE",
    "STATUS",
    "AGENT",
    "LABELS",
    "CPU",
    "MEM",
    "DISK",
]
ITEM_COLUMNS = ["NAME", "KIND", "STATE", "RESTARTS", "REPLACED", "LAST ERROR"]
EVENT_COLUMNS = ["TIME", "TYPE", "DEVICE", "ACTOR", "MESSAGE"]
# Colour and cursor sequences a unit wrote to its output (ESC [ ... letter).
TERMINAL_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
METRIC_NAMES = {
    "cpu_percent": "cpu",
    "memory_percent": "memory",
    "disk_percent": "disk (fullest)",
    "load1": "load (1m)",
    "load5": "load (5m)",
    "load15": "load (15m)",
    "temperature_celsius": "temperature",
    "uptime_seconds": "uptime",
    "sampled_at": "sampled",
}


def presence(value: str) -> Text:
    """A presence as coloured text, so it reads without colour too."""
    return Text(value, style=PRESENCE_STYLES.get(value, ""))


def apply_status(value: str | None) -> Text:
    """A reported status (running, failed...) as coloured text, `-` before the first report."""
    return Text(value or "-", style=STATUS_STYLES.get(value or "", ""))


def bundle_ref(bundle: str | None, version: str | None) -> str:
    """`name@version`, or `-` when there is none."""
    if bundle is None:
        return "-"
    return f"{bundle}@{version}" if version else bundle


def device_row(device: dict[str, Any]) -> list[Cell]:
    """One device as a row of the device table."""
    metrics = device.get("metrics") or {}
    return [
        device["device_id"],
        device["name"],
        _presence(device),
        ago(device["last_seen_at"]),
        bundle_ref(device.get("bundle"), device.get("bundle_version")),
        apply_status(device.get("reported_status")),
        device["agent_version"] or "-",
        labels_text(device["labels"]),
        percent(metrics.get("cpu_percent")),
        percent(metrics.get("memory_percent")),
        percent(metrics.get("disk_percent")),
    ]


def _presence(device: dict[str, Any]) -> Text:
    """Presence, marked when the device is cordoned (new updates leave it out)."""
    shown = presence(device["presence"])
    if device.get("cordoned"):
        shown = Text.assemble(shown, (" cordoned", "bold yellow"))
    return shown


def device_table(devices: Iterable[dict[str, Any]]) -> Table:
    """The device list as `devices ls` and `groups show` print it."""
    return table(DEVICE_COLUMNS, [device_row(d) for d in devices])


def event_row(event: dict[str, Any]) -> list[Cell]:
    """One event as a row of the activity table."""
    return [
        local_time(event["created_at"]),
        event["type"],
        event["device_id"] or "-",
        event["actor"],
        event["message"],
    ]


def event_table(events: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    """Events, newest first, as `events ls` and `devices show` print them."""
    return table(EVENT_COLUMNS, [event_row(e) for e in events], title=title)


def _generation(device: dict[str, Any]) -> Text:
    desired, reported = device["desired_generation"], device["reported_generation"]
    failed = device.get("reported_status") == "failed"
    in_sync = desired == reported and not failed
    note = "in sync" if in_sync else ("update failed" if failed else "update pending")
    return Text(
        f"desired {desired}, reported {reported} ({note})", style="" if in_sync else "yellow"
    )


def _summary(device: dict[str, Any]) -> list[tuple[str, Cell]]:
    seen = ago(device["last_seen_at"])
    return [
        ("name", device["name"]),
        ("presence", Text.assemble(_presence(device), f" (last seen {seen})")),
        ("agent", device["agent_version"] or "-"),
        ("labels", labels_text(device["labels"])),
        ("groups", ", ".join(device["groups"]) or "-"),
        ("generation", _generation(device)),
        ("enrolled", f"{local_time(device['enrolled_at'])} ({ago(device['enrolled_at'])})"),
        ("decommissioned", local_time(device["decommissioned_at"])),
        ("downloads", downloads_text(device.get("downloads") or {})),
    ]


def downloads_text(counters: dict[str, Any]) -> str:
    """`3 (1 resumed, 0 cut), 52.0 MB sent`: artifact downloads as the server saw them."""
    if not counters.get("requests"):
        return "-"
    sent = counters["bytes_sent"] / 1_000_000
    return (
        f"{counters['requests']} ({counters['resumed']} resumed, {counters['cut']} cut), "
        f"{sent:.1f} MB sent"
    )


def _fact(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return "-" if value in (None, "") else str(value)


def _metric(name: str, value: Any) -> str:
    if name.endswith("_percent"):
        return percent(value)
    if name == "uptime_seconds" and isinstance(value, int | float):
        return format_duration(timedelta(seconds=value))
    if name == "temperature_celsius" and isinstance(value, int | float):
        return f"{value:.1f} °C"
    if name == "sampled_at":
        return local_time(value)
    if name.startswith("load") and isinstance(value, int | float):
        return f"{value:.2f}"
    return _fact(value)


def metric_pairs(metrics: dict[str, Any] | None) -> list[tuple[str, Cell]]:
    """Latest metrics as name/value pairs, most useful first."""
    metrics = metrics or {}
    known: list[tuple[str, Cell]] = [
        (label, _metric(key, metrics[key])) for key, label in METRIC_NAMES.items() if key in metrics
    ]
    disks = [f"{d['mount']} {percent(d['percent'])}" for d in metrics.get("disks", [])]
    return known + ([("disks", ", ".join(disks))] if disks else [])


def _desired(desired: dict[str, Any]) -> list[tuple[str, Cell]]:
    bundle = bundle_ref(desired["bundle"], desired["version"])
    return [
        ("bundle", bundle if desired["bundle"] else "- (no bundle assigned)"),
        ("generation", str(desired["generation"])),
    ]


def _reported(reported: dict[str, Any]) -> list[tuple[str, Cell]]:
    status = apply_status(reported["status"] or "not reported yet")
    if reported["reason"]:
        status.append(f": {reported['reason']}")
    bundle = bundle_ref(reported["bundle"], reported["version"])
    if reported["digest"]:
        bundle += f" ({reported['digest'][:19]}…)"
    return [("status", status), ("bundle", bundle), ("generation", str(reported["generation"]))]


def item_table(items: Iterable[dict[str, Any]]) -> Table:
    """The containers and apps a device reports, one row each."""
    rows: list[list[Cell]] = [
        [
            item["name"],
            item["kind"],
            Text(item["state"], style="green" if item["state"] == "running" else "yellow"),
            str(item["restart_count"]),
            # How the last update replaced it: start-first (no gap) or stop-first.
            item.get("update_order") or "-",
            item["last_error"] or "-",
        ]
        for item in items
    ]
    return table(ITEM_COLUMNS, rows)


def state_sections(device: dict[str, Any]) -> list[RenderableType]:
    """Desired next to reported: what the device should run, and what it says it runs."""
    reported = device["reported"]
    parts: list[RenderableType] = [
        details(_desired(device["desired"]), title="Desired"),
        Text(),
        details(_reported(reported), title="Reported"),
    ]
    parts += failure_log(reported)
    if reported["items"]:
        parts += [item_table(reported["items"])]
    return [*parts, Text()]


def failure_log(reported: dict[str, Any], last: int | None = None) -> list[RenderableType]:
    """The last lines the unit that failed the update wrote, when the report carries them.

    `last` shows only that many of them (the newest), saying how many there were.
    """
    lines = reported.get("failure_log") or []
    if reported.get("status") != "failed" or not lines:
        return []
    unit = reported.get("failed_unit") or "the failed unit"
    shown = lines if last is None else lines[-last:]
    of = f" of {len(lines)}" if len(shown) < len(lines) else ""
    title = Text(f"Last {len(shown)}{of} line{_s(lines)} of {unit}:", style="dim")
    text = Text("\n".join(_inert(line) for line in shown))
    return [title, Padding(text, (0, 0, 0, 2))]


def _s(items: Sequence[object]) -> str:
    return "" if len(items) == 1 else "s"


def _inert(line: str) -> str:
    """A line a device sent, unable to move the cursor or recolour the operator's terminal."""
    line = TERMINAL_SEQUENCE.sub("", line)
    return "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in line)


def device_detail(device: dict[str, Any]) -> RenderableType:
    """Everything `devices show` prints about one device."""
    facts = [(key, _fact(value)) for key, value in sorted(device["facts"].items())]
    metrics = metric_pairs(device["metrics"]) or [("-", "no metrics reported yet")]
    parts: Sequence[RenderableType] = [
        details(_summary(device), title=device["device_id"]),
        Text(),
        *state_sections(device),
        details(facts or [("-", "no facts reported yet")], title="Facts"),
        Text(),
        details(metrics, title="Latest metrics"),
        Text(),
        event_table(device["events"], title="Activity (newest first)"),
    ]
    return Group(*parts)
