"""`signalbeam alerts`: incidents (ls, show, ack, resolve) and the rules that open them."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from signalbeam.cli import notifiers
from signalbeam.cli.client import connect
from signalbeam.cli.output import JsonFlag, ago, console, details, print_json, table

app = typer.Typer(
    help="Alerts: incidents, the rules that open them, notifiers.", no_args_is_help=True
)
rules = typer.Typer(help="Alert rules: what opens an incident.", no_args_is_help=True)
app.add_typer(rules, name="rules")
app.add_typer(notifiers.app, name="notifiers")

IncidentId = Annotated[int, typer.Argument(metavar="ID", min=1, help="The incident's id.")]
RuleName = Annotated[str, typer.Argument(metavar="NAME", help="The rule's name.")]
INCIDENTS = "/api/v1/alerts/incidents"
RULES = "/api/v1/alerts/rules"
STATE_STYLES = {"firing": "bold red", "acknowledged": "yellow", "resolved": "green"}


def _state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


@app.command("ls")
def list_incidents(
    state: Annotated[
        list[str] | None, typer.Option(help="firing, acknowledged or resolved (repeatable).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Only this device's incidents.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json_output: JsonFlag = False,
) -> None:
    """List incidents, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    if device:
        params["device"] = device
    with connect() as api:
        found: dict[str, Any] = api.get(INCIDENTS, params)
    if json_output:
        print_json(found)
        return
    if not found["items"]:
        typer.echo("No incidents" + (f" {', '.join(state)}" if state else "") + ".")
        return
    rows = [
        [
            str(i["id"]),
            _state(i["state"]),
            i["severity"],
            i["title"],
            ago(i["opened_at"]),
            str(i["fired_count"]),
        ]
        for i in found["items"]
    ]
    console().print(table(["ID", "STATE", "SEVERITY", "INCIDENT", "OPENED", "FIRED"], rows))


def _print_incident(incident: dict[str, Any]) -> None:
    cause = incident["cause"]
    summary: list[tuple[str, Any]] = [
        ("state", _state(incident["state"])),
        ("rule", incident["rule"]),
        ("severity", incident["severity"]),
        ("opened", f"{ago(incident['opened_at'])}, fired {incident['fired_count']} time(s)"),
        ("acknowledged", incident["acknowledged_by"] or "-"),
        (
            "resolved",
            f"{ago(incident['resolved_at'])} by {incident['resolved_by']}"
            if incident["resolved_at"]
            else "-",
        ),
        (
            "changed before",
            f"{cause['message']} ({cause['type']}, {ago(cause['at'])} by {cause['actor']})"
            if cause
            else "nothing recorded in the day before",
        ),
    ]
    out = console()
    out.print(details(summary, title=f"#{incident['id']} {incident['title']}"))
    out.print()
    rows = [[ago(e["at"]), e["kind"], e["actor"], e["message"]] for e in incident["timeline"]]
    out.print(table(["WHEN", "WHAT", "WHO", "DETAIL"], rows))


@app.command()
def show(incident_id: IncidentId, json_output: JsonFlag = False) -> None:
    """Show an incident: its timeline and what changed before it."""
    with connect() as api:
        incident: dict[str, Any] = api.get(f"{INCIDENTS}/{incident_id}")
    if json_output:
        print_json(incident)
        return
    _print_incident(incident)


@app.command()
def ack(incident_id: IncidentId, json_output: JsonFlag = False) -> None:
    """Acknowledge a firing incident: someone is on it."""
    with connect() as api:
        incident: dict[str, Any] = api.post(f"{INCIDENTS}/{incident_id}/ack")
    if json_output:
        print_json(incident)
        return
    typer.echo(f"Acknowledged #{incident_id}: {incident['title']}")


@app.command()
def resolve(incident_id: IncidentId, json_output: JsonFlag = False) -> None:
    """Resolve an incident by hand (it opens again if its condition fires again)."""
    with connect() as api:
        incident: dict[str, Any] = api.post(f"{INCIDENTS}/{incident_id}/resolve")
    if json_output:
        print_json(incident)
        return
    typer.echo(f"Resolved #{incident_id}: {incident['title']}")


def _rule_path(name: str) -> str:
    return f"{RULES}/{quote(name, safe='')}"


For = Annotated[
    str | None, typer.Option("--for", help="How long the condition must last, e.g. 5m.")
]
Selector = Annotated[str | None, typer.Option(help="Only devices matching this selector.")]
Group = Annotated[str | None, typer.Option(help="Only devices of this group.")]
Severity = Annotated[str | None, typer.Option(help="info, warning or critical.")]


@rules.command("ls")
def list_rules(json_output: JsonFlag = False) -> None:
    """List alert rules."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(RULES)
    if json_output:
        print_json(found)
        return
    rows = [
        [
            r["name"],
            r["description"],
            r["severity"],
            r["selector"] or (f"group {r['group']}" if r["group"] else "every device"),
            "on" if r["enabled"] else "off",
        ]
        for r in found
    ]
    console().print(table(["NAME", "FIRES ON", "SEVERITY", "SCOPE", "ENABLED"], rows))


Metric = Annotated[
    str | None, typer.Option(help="metric_above: cpu, memory, disk, load or temperature.")
]
Threshold = Annotated[float | None, typer.Option(help="metric_above: fires above this value.")]
Mount = Annotated[str | None, typer.Option(help="metric_above on disk: only this mount.")]


def _body(
    name: str,
    kind: str,
    severity: str | None,
    for_: str | None,
    selector: str | None,
    group: str | None,
    metric: tuple[str | None, float | None, str | None] = (None, None, None),
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "kind": kind, "selector": selector, "group": group}
    for key, value in zip(("metric", "threshold", "mount"), metric, strict=True):
        if value is not None:
            body[key] = value
    if severity:
        body["severity"] = severity
    if for_:
        body["for"] = for_
    return body


@rules.command("add")
def add_rule(
    name: RuleName,
    kind: Annotated[
        str,
        typer.Option(
            help="device_offline, metric_above, unit_degraded, update_failed, samples_dropped, "
            "rollout_halted or rollout_rolled_back."
        ),
    ],
    severity: Severity = None,
    for_: For = None,
    selector: Selector = None,
    group: Group = None,
    metric: Metric = None,
    threshold: Threshold = None,
    mount: Mount = None,
    json_output: JsonFlag = False,
) -> None:
    """Add an alert rule, e.g. --kind metric_above --metric disk --threshold 90 --for 10m."""
    body = _body(name, kind, severity, for_, selector, group, (metric, threshold, mount))
    with connect() as api:
        rule: dict[str, Any] = api.post(RULES, body)
    if json_output:
        print_json(rule)
        return
    typer.echo(f"Added rule {name}: {rule['description']} ({rule['severity']})")


@rules.command("edit")
def edit_rule(
    name: RuleName,
    severity: Severity = None,
    for_: For = None,
    selector: Selector = None,
    group: Group = None,
    threshold: Threshold = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Switch it on or off.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Change a rule's severity, duration, scope, or switch it on or off."""
    body: dict[str, Any] = {}
    for key, value in (
        ("severity", severity),
        ("for", for_),
        ("selector", selector),
        ("group", group),
        ("enabled", enable),
        ("threshold", threshold),
    ):
        if value is not None:
            body[key] = value
    with connect() as api:
        rule: dict[str, Any] = api.patch(_rule_path(name), body)
    if json_output:
        print_json(rule)
        return
    state = "on" if rule["enabled"] else "off"
    typer.echo(f"Rule {name}: {rule['description']} ({rule['severity']}, {state})")


@rules.command("rm")
def delete_rule(name: RuleName) -> None:
    """Delete a rule and its incidents."""
    with connect() as api:
        api.delete(_rule_path(name))
    typer.echo(f"Deleted rule {name}.")


@rules.command()
def preview(
    kind: Annotated[str, typer.Option(help="The kind of rule, as for add.")],
    for_: For = None,
    selector: Selector = None,
    group: Group = None,
    json_output: JsonFlag = False,
) -> None:
    """Which devices a rule would fire on now, before you add it."""
    with connect() as api:
        found: dict[str, Any] = api.post(
            "/api/v1/alerts/preview", _body("preview", kind, None, for_, selector, group)
        )
    if json_output:
        print_json(found)
        return
    shown = ", ".join(found["would_fire"]) or "nothing"
    more = found["total"] - len(found["would_fire"])
    typer.echo(
        f"Would fire now on {found['total']} ({found['note']}): {shown}"
        + (f" and {more} more" if more else "")
    )


SILENCES = "/api/v1/alerts/silences"


@app.command()
def silence(
    for_: For = None,
    window: Annotated[
        str | None,
        typer.Option(help='A recurring maintenance window, e.g. "Sat,Sun 00:00-24:00".'),
    ] = None,
    selector: Selector = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's notices.")] = None,
    comment: Annotated[str, typer.Option(help="Why, for whoever sees it.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Mute notifications (incidents still open): --for 2h, or a recurring --window."""
    body: dict[str, Any] = {"selector": selector, "rule": rule, "comment": comment}
    if for_:
        body["for"] = for_
    if window:
        body["window"] = window
    with connect() as api:
        made: dict[str, Any] = api.post(SILENCES, body)
    if json_output:
        print_json(made)
        return
    scope = made["selector"] or "every device"
    until = f"until {made['ends_at']}" if made["ends_at"] else f"in {made['window']}"
    typer.echo(f"Silence {made['id']}: notifications for {scope} muted {until}.")


@app.command()
def silences(json_output: JsonFlag = False) -> None:
    """Silences and maintenance windows that have not ended."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(SILENCES)
    if json_output:
        print_json(found)
        return
    if not found:
        typer.echo("No silences.")
        return
    rows = [
        [
            str(s["id"]),
            s["selector"] or "every device",
            s["rule"] or "all rules",
            s["window"] or "-",
            s["ends_at"] or "-",
            s["comment"] or "-",
        ]
        for s in found
    ]
    console().print(table(["ID", "DEVICES", "RULES", "WINDOW", "ENDS", "COMMENT"], rows))


@app.command()
def unsilence(
    silence_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The silence's id.")],
) -> None:
    """End a silence now."""
    with connect() as api:
        api.delete(f"{SILENCES}/{silence_id}")
    typer.echo(f"Silence {silence_id} ended.")
