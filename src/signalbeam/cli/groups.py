"""`signalbeam groups`: static member lists and dynamic selectors."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from signalbeam.cli import views
from signalbeam.cli.client import connect
from signalbeam.cli.output import JsonFlag, ago, console, details, page_footer, print_json, table

app = typer.Typer(
    help="Groups: named sets of devices, static or by selector.", no_args_is_help=True
)
GroupName = Annotated[str, typer.Argument(metavar="NAME", help="The group's name.")]
Devices = Annotated[list[str], typer.Argument(metavar="DEVICE...", help="Device ids.")]
GROUP_COLUMNS = ["NAME", "KIND", "SELECTOR", "MEMBERS", "DESCRIPTION", "CREATED"]


def group_path(name: str) -> str:
    """The API path of one group."""
    return f"/api/v1/groups/{quote(name, safe='')}"


def _members(count: int) -> str:
    return f"{count} device" + ("" if count == 1 else "s")


@app.command()
def create(
    name: GroupName,
    selector: Annotated[
        str | None, typer.Option(help="Makes the group dynamic: every device matching it.")
    ] = None,
    description: Annotated[str, typer.Option(help="What the group is for.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Create a static group, or a dynamic one with --selector."""
    body = {"name": name, "selector": selector, "description": description}
    with connect() as api:
        group: dict[str, Any] = api.post("/api/v1/groups", body)
    if json_output:
        print_json(group)
        return
    if group["kind"] == "dynamic":
        typer.echo(
            f"Created dynamic group {name} ({group['selector']}): {_members(group['members'])}"
        )
    else:
        typer.echo(
            f"Created static group {name}; add devices with: signalbeam groups add {name} ID..."
        )


@app.command()
def add(name: GroupName, devices: Devices, json_output: JsonFlag = False) -> None:
    """Add devices to a static group."""
    with connect() as api:
        group: dict[str, Any] = api.post(f"{group_path(name)}/members", {"devices": devices})
    if json_output:
        print_json(group)
        return
    typer.echo(f"Added {', '.join(devices)} to {name}; it has {_members(group['members'])}.")


@app.command()
def remove(name: GroupName, devices: Devices, json_output: JsonFlag = False) -> None:
    """Remove devices from a static group (the devices themselves are not touched)."""
    group: dict[str, Any] = {}
    with connect() as api:
        for device_id in devices:
            group = api.delete(f"{group_path(name)}/members/{quote(device_id, safe='')}")
    if json_output:
        print_json(group)
        return
    typer.echo(f"Removed {', '.join(devices)} from {name}; it has {_members(group['members'])}.")


@app.command("ls")
def list_groups(json_output: JsonFlag = False) -> None:
    """List groups with their member counts."""
    with connect() as api:
        groups: list[dict[str, Any]] = api.get("/api/v1/groups")
    if json_output:
        print_json(groups)
        return
    if not groups:
        typer.echo("No groups yet; create one with: signalbeam groups create NAME")
        return
    rows = [
        [
            g["name"],
            g["kind"],
            g["selector"] or "-",
            str(g["members"]),
            g["description"] or "-",
            ago(g["created_at"]),
        ]
        for g in groups
    ]
    console().print(table(GROUP_COLUMNS, rows))


@app.command()
def show(
    name: GroupName,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Members per page.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Members to skip.")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """Show a group and a page of its member devices."""
    with connect() as api:
        group: dict[str, Any] = api.get(group_path(name), {"limit": limit, "offset": offset})
    if json_output:
        print_json(group)
        return
    out = console()
    summary = [
        ("kind", group["kind"]),
        ("selector", group["selector"] or "-"),
        ("description", group["description"] or "-"),
        ("members", _members(group["members"])),
        ("created", f"{ago(group['created_at'])} by {group['created_by']}"),
    ]
    out.print(details(summary, title=group["name"]))
    out.print()
    if group["devices"]:
        out.print(views.device_table(group["devices"]))
    out.print(page_footer(offset, len(group["devices"]), group["members"]), style="dim")


@app.command("rm")
def delete(name: GroupName) -> None:
    """Delete a group; its devices are not touched."""
    with connect() as api:
        api.delete(group_path(name))
    typer.echo(f"Deleted group {name}; its devices are not touched.")
