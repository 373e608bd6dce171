"""`signalbeam devices`: list, inspect, label and decommission devices, and read their metrics."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from signalbeam.cli import arguments, views
from signalbeam.cli.client import connect
from signalbeam.cli.output import (
    CliError,
    JsonFlag,
    YesFlag,
    console,
    labels_text,
    local_time,
    page_footer,
    percent,
    print_json,
    table,
)
from signalbeam.domain.model import Presence

app = typer.Typer(help="Devices: list, inspect, label, decommission.", no_args_is_help=True)
DeviceId = Annotated[str, typer.Argument(metavar="ID", help="The device's id.")]
POINT_COLUMNS = ["TIME", "SAMPLES", "CPU", "MEM", "DISK", "LOAD", "TEMP", "CPU MAX"]


def device_path(device_id: str) -> str:
    """The API path of one device (ids may hold `:`; nothing else needs quoting)."""
    return f"/api/v1/devices/{quote(device_id, safe='')}"


@app.command("ls")
def list_devices(
    selector: Annotated[
        str | None, typer.Option(help='Label selector, e.g. "env=prod,site in (oslo,bergen)".')
    ] = None,
    status: Annotated[
        Presence | None, typer.Option(help="Only devices with this presence.")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only members of this group.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the id or name.")] = None,
    sort: Annotated[
        str,
        typer.Option(
            help="name, device_id, last_seen, presence or enrolled; -name for descending."
        ),
    ] = "name",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Devices per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Devices to skip.")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """List devices with presence, last contact, labels and latest load."""
    params = {
        "selector": selector,
        "status": status.value if status else None,
        "group": group,
        "search": search,
        "sort": sort,
        "limit": limit,
        "offset": offset,
    }
    with connect() as api:
        page: dict[str, Any] = api.get("/api/v1/devices", params)
    if json_output:
        print_json(page)
        return
    out = console()
    if page["items"]:
        out.print(views.device_table(page["items"]))
    out.print(page_footer(page["offset"], len(page["items"]), page["total"]), style="dim")


@app.command()
def show(device_id: DeviceId, json_output: JsonFlag = False) -> None:
    """Show one device: facts, labels, groups, latest metrics, generations and activity."""
    with connect() as api:
        device: dict[str, Any] = api.get(device_path(device_id))
    if json_output:
        print_json(device)
        return
    console().print(views.device_detail(device))


@app.command()
def label(
    device_id: DeviceId,
    changes: Annotated[
        list[str], typer.Argument(metavar="k=v|k-...", help="k=v sets a label, k- removes it.")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Set and remove labels in one change: `devices label pi-1 env=prod old-`."""
    to_set, to_remove = arguments.label_changes(changes)
    with connect() as api:
        device: dict[str, Any] = api.patch(
            f"{device_path(device_id)}/labels", {"set": to_set, "remove": to_remove}
        )
    if json_output:
        print_json(device)
        return
    typer.echo(f"Labels of {device_id}: {labels_text(device['labels'])}")


@app.command("rm")
def remove(device_id: DeviceId, yes: YesFlag = False, json_output: JsonFlag = False) -> None:
    """Decommission a device: revoke its credential so it cannot sync; keep its history."""
    question = f"Decommission {device_id}? It will no longer be able to sync"
    if not yes and not typer.confirm(question, default=False):
        raise CliError(f"cancelled; {device_id} was not decommissioned")
    with connect() as api:
        device: dict[str, Any] = api.delete(device_path(device_id))
    if json_output:
        print_json(device)
        return
    typer.echo(f"Decommissioned {device_id}: its credential is revoked, its history is kept.")


def _point_row(point: dict[str, Any]) -> list[str]:
    temperature = point["temperature"]
    return [
        local_time(point["ts"]),
        str(point["samples"]),
        percent(point["cpu"]),
        percent(point["memory"]),
        percent(point["disk"]),
        "-" if point["load1"] is None else f"{point['load1']:.2f}",
        "-" if temperature is None else f"{temperature:.1f}",
        percent(point["cpu_max"]),
    ]


@app.command()
def metrics(
    device_id: DeviceId,
    since: Annotated[str, typer.Option(help="How far back: 15m, 1h, 7d, or a time.")] = "1h",
    step: Annotated[
        str | None, typer.Option(help="Width of each point, e.g. 1m [default: about 300 points].")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Metric history of one device, averaged into steps."""
    params = {
        "from": arguments.since(since),
        "step": arguments.duration(step, "--step") if step else None,
    }
    with connect() as api:
        series: dict[str, Any] = api.get(f"{device_path(device_id)}/metrics", params)
    if json_output:
        print_json(series)
        return
    points = series["points"]
    if not points:
        typer.echo(f"No metrics from {device_id} since {local_time(series['from'])}.")
        return
    console().print(table(POINT_COLUMNS, [_point_row(p) for p in points]))
    count = f"{len(points)} point" + ("" if len(points) == 1 else "s")
    typer.echo(f"{count} of {series['step_seconds']:g}s each since {local_time(series['from'])}")
