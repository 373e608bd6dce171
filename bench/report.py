"""The short human table printed on stderr next to the JSON."""

from __future__ import annotations

from typing import Any


def _ms(latency: dict[str, Any]) -> str:
    parts = [
        f"{key} {latency[key]:.1f}" for key in ("p50", "p95", "p99") if latency.get(key) is not None
    ]
    if latency.get("max") is not None:
        parts.append(f"max {latency['max']:.0f}")
    return " ".join(parts) + " ms" if parts else "no samples"


def _resources(usage: dict[str, Any]) -> str:
    if not usage:
        return ""
    load = usage.get("load_generator_cpu_percent_mean")
    return (
        f"server CPU {usage['server_cpu_percent_mean']:.0f}% (max {usage['server_cpu_percent_max']:.0f}%), "
        f"RSS {usage['server_rss_mb_max']:.0f} MB; load gen CPU "
        f"{'-' if load is None else f'{load:.0f}%'}; machine {usage['machine_cpu_percent_mean']:.0f}%"
    )


def _ingest(r: dict[str, Any]) -> list[str]:
    s = r["syncs"]
    return [
        f"{r['devices']} devices, offered {r['target_rate']:g}/s, got {s['per_second']}/s, "
        f"{s['errors']} errors; latency {_ms(s['latency_ms'])}; schedule lag p99 "
        f"{r['schedule_lag_ms']['p99']} ms",
        _resources(r["resources"]),
    ]


def _ceiling(r: dict[str, Any]) -> list[str]:
    sync, health = r["sync"], r["healthz"]
    return [
        f"best: sync {sync['per_second']}/s at {sync['concurrency']} clients "
        f"({_ms(sync['latency_ms'])}, {sync['errors']} errors) vs /healthz "
        f"{health['per_second']}/s at {health['concurrency']}; ratio {r['ratio']}",
        "sync: " + _resources(sync["resources"]),
        "healthz: " + _resources(health["resources"]),
        *(
            f"{name} at {run['concurrency']} clients: {run['per_second']}/s, "
            f"p99 {run['latency_ms']['p99']} ms, {run['errors']} errors"
            for name in ("sync", "healthz")
            for run in r["steps"][name]
        ),
    ]


def _push(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['watching']} watching; fetched {r['fetched']}, missed {r['missed']}; "
        f"{100 * r['within_1s']:.1f}% within 1 s; latency {_ms(r['fetch_latency_ms'])}; "
        f"change request took {r['post_ms']:.0f} ms",
        _resources(r["resources"]),
    ]


def _sse(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['subscribers']} subscribers x {r['events']} events: {r['deliveries']} delivered, "
        f"{r['missed']} missed; latency {_ms(r['latency_ms'])}",
        _resources(r["resources"]),
    ]


def _footprint(r: dict[str, Any]) -> list[str]:
    # Written separately (bench/agent_footprint.py): show its numbers without assuming them all.
    known = ("rss_mb_steady", "uss_mb", "cpu_percent_one_core")
    if not all(key in r for key in known):
        return [", ".join(f"{key} {value}" for key, value in r.items())[:300]]
    return [
        f"one agent: RSS {r['rss_mb_steady']} MB steady, USS {r['uss_mb']} MB, "
        f"CPU {r['cpu_percent_one_core']}% of one core over {r.get('seconds', '?')} s "
        f"({r.get('syncs', '?')} syncs at {r.get('interval_seconds', '?')} s)"
    ]


def _web(r: dict[str, Any]) -> list[str]:
    views = r.get("views", {})
    lines = [f"{r.get('devices', '?')} devices, {r.get('rounds', '?')} rounds per view"]
    lines += [
        f"{name}: median {v['median_ms']} ms, p95 {v['p95_ms']} ms" for name, v in views.items()
    ]
    return lines


def _rollouts(r: dict[str, Any]) -> list[str]:
    healthy, failing = r["healthy"], r["failing"]
    return [
        f"{healthy['devices']} healthy devices, waves {healthy['waves']}, soak "
        f"{healthy['soak_seconds']:g}s: {healthy['status']} in {healthy['create_to_completed_seconds']}s",
        f"{failing['devices']} devices failing half their updates: {failing['status']} "
        f"{failing['trip_to_rolled_back_seconds']}s after the tripping failure; devices back "
        f"{failing['rolled_back_to_devices_reverted_seconds']}s later",
    ]


def _config_push(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['devices']:,} devices, round {i + 1}: PATCH {x['patch_ms']} ms; applied by 50% "
        f"{x['p50_seconds']}s, 95% {x['p95_seconds']}s, all {x['all_seconds']}s"
        for i, x in enumerate(r["rounds"])
    ] + [
        f"CPU: server {r['server_cpu_percent']}%, "
        f"simulators {r.get('simulators_cpu_percent', r.get('simulator_cpu_percent'))}%"
    ]


def _actions(action: dict[str, Any] | None) -> list[str]:
    if action is None:
        return []  # a result from before device actions
    bulk = action["bulk"]
    return [
        f"device action (restart-agent) round trip {_ms(action['latency_ms'])}; one action "
        f"over {bulk['devices']:,} devices: {bulk['done']:,} done in {bulk['seconds']}s"
    ]


def _sessions(r: dict[str, Any]) -> list[str]:
    lines = []
    for size in r["sizes"]:
        alone, together = size["exec"]["sequential"], size["exec"]["concurrent"]
        follow = size["follow"]
        lines += [
            f"{size['devices']:,} watching ({size['rss_kb_per_watching_device']} KB RSS each): "
            f"exec round trip {_ms(alone['latency_ms'])} one at a time; "
            f"{_ms(together['latency_ms'])} {together['concurrency']} at a time "
            f"({together['per_second']}/s)",
            f"{follow['sessions']} follows open: line delay {_ms(follow['line_delay_ms'])}; "
            f"{follow['rss_kb_per_open_session']} KB RSS each",
            *_actions(size.get("action")),
            f"CPU server/simulator: idle {size['idle']['server_cpu_percent']:.0f}%/"
            f"{size['idle']['simulator_cpu_percent']:.0f}%, exec "
            f"{alone['server_cpu_percent']:.0f}%/{alone['simulator_cpu_percent']:.0f}% "
            f"(concurrent {together['server_cpu_percent']:.0f}%/"
            f"{together['simulator_cpu_percent']:.0f}%), follows "
            f"{follow['server_cpu_percent']:.0f}%/{follow['simulator_cpu_percent']:.0f}%",
        ]
    errors = r.get("operator_errors") or {}
    if errors:
        lines.append(f"operator errors: {errors}")
    return lines


def _storm(r: dict[str, Any]) -> list[str]:
    online, storm, back = r["online"], r["storm"], r["storm"]["back"]
    plan = r["plan"]
    return [
        f"{online['devices']:,} devices, {plan['interval']:g} s interval, server down "
        f"{plan['outage']:g} s: back 50% {back['p50_seconds']} s, 95% {back['p95_seconds']} s, "
        f"all {back['all_seconds']} s after it served ({back['back']} of {back['devices']})",
        f"storm: sync {_ms(storm['latency_ms'])}, {storm['errors']} errors, "
        f"{storm['syncs_per_second']}/s; steady before: {_ms(r['steady']['latency_ms'])}",
        f"CPU server/simulator: steady {r['steady']['server_cpu_percent']:.0f}%/"
        f"{r['steady']['simulator_cpu_percent']:.0f}%, outage -/"
        f"{r['outage']['simulator_cpu_percent']:.0f}%, storm {storm['server_cpu_percent']:.0f}%/"
        f"{storm['simulator_cpu_percent']:.0f}%; enrolled {online['enrolled_per_second']}/s",
    ]


def _artifacts(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['size_mb']} MB: upload {r['upload_mb_per_s']} MB/s, download {r['download_mb_per_s']} MB/s",
        f"server RSS {r['server_rss_mb_idle']} MB idle, {r['server_rss_mb_peak']} MB peak; "
        f"client peak {r['client_rss_mb_peak']} MB",
    ]


def _alerts(r: dict[str, Any]) -> list[str]:
    def phase(name: str, first: str, hook: str) -> str:
        p = r[name]
        a, b = p[first], p[hook]
        return (
            f"{name}: {p['devices']} devices; incident p50 {a['p50']} s, p95 {a['p95']} s, max "
            f"{a['max']} s; webhook p50 {b['p50']} s, p95 {b['p95']} s, max {b['max']} s; "
            f"{p['messages']} messages ({p['grouped']} grouped); CPU server "
            f"{p['server_cpu_percent']}%, simulator {p['simulator_cpu_percent']}%"
        )

    due = ("incident_after_due_seconds", "webhook_after_due_seconds")
    back = ("resolved_after_back_seconds", "webhook_after_back_seconds")
    storm = r["storm"]
    return [
        f"{r['online']['devices']} devices; after last sync + T ({r['plan']['for_seconds']:g} s):",
        phase("storm", *due) + f"; rest of the fleet: {_ms(storm['rest_sync_latency_ms'])}",
        phase("storm_back", *back),
        phase("big_storm", *due),
        phase("big_storm_back", *back),
    ]


def _scrape(r: dict[str, Any]) -> list[str]:
    s = r["scrapes"]
    return [
        f"{r['devices']:,} devices, GET /metrics ({s['series']} series, {s['bytes']:,} bytes): "
        f"uncached {s['cold']['wall_ms']['median']} ms, server CPU "
        f"{s['cold']['server_cpu_ms']['mean']} ms; cached {s['cached']['wall_ms']['median']} ms, "
        f"server CPU {s['cached']['server_cpu_ms']['mean']} ms"
    ]


DETAILS = {
    "sync-ingest": _ingest,
    "ceiling": _ceiling,
    "push-latency": _push,
    "sse": _sse,
    "agent-footprint": _footprint,
    "web-fleet": _web,
    "artifacts": _artifacts,
    "rollout-convergence": _rollouts,
    "config-push": _config_push,
    "sessions": _sessions,
    "reconnect-storm": _storm,
    "alerts": _alerts,
    "metrics-scrape": _scrape,
}


def _targets(entry: dict[str, Any]) -> str:
    marks = [
        f"{t['target']}: {'met' if t['met'] else 'MISSED'} ({t['measured']})"
        for t in entry.get("targets", [])
    ]
    notes = {t["note"] for t in entry.get("targets", []) if t.get("note")}
    return "; ".join(marks) + (f" [{'; '.join(sorted(notes))}]" if notes else "")


def table(entries: list[dict[str, Any]]) -> str:
    """One block per scenario run: headline numbers, resources, targets, notes."""
    lines = []
    for entry in entries:
        title = f"{entry['scenario']}" + (f" ({entry['backend']})" if entry["backend"] else "")
        if entry["status"] != "ok":
            lines.append(f"{title:<28} {entry['status']}: {entry['reason']}")
            continue
        detail = DETAILS.get(entry["scenario"])
        body = detail(entry["results"]) if detail else [str(entry["results"])[:300]]
        lines.append(f"{title:<28} {body[0]}")
        lines += [f"{'':<28} {line}" for line in body[1:] if line]
        if entry.get("targets"):
            lines.append(f"{'':<28} targets: {_targets(entry)}")
        lines += [f"{'':<28} note: {note}" for note in entry.get("notes", [])]
    return "\n".join(lines)
