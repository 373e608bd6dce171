"""`signalbeam config`: layered, versioned config (tenant < groups < device) and secrets."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import click
import typer

from signalbeam.cli import config_views as views
from signalbeam.cli.client import Api, connect
from signalbeam.cli.output import (
    CliError,
    JsonFlag,
    YesFlag,
    ago,
    console,
    page_footer,
    print_json,
    table,
)

app = typer.Typer(
    help=(
        "Config: values at three levels, tenant < group < device, merged per top-level key "
        "into what each device runs with; every change is a version you can diff and roll back."
    ),
    no_args_is_help=True,
)
DeviceOption = Annotated[
    str | None, typer.Option("--device", metavar="DEVICE", help="The device's own layer.")
]
GroupOption = Annotated[
    str | None, typer.Option("--group", metavar="GROUP", help="The group's layer.")
]
TenantOption = Annotated[bool, typer.Option("--tenant", help="The tenant's default layer.")]
Message = Annotated[str, typer.Option("--message", "-m", help="Why: kept in the history.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Priority = Annotated[
    int | None,
    typer.Option(
        help="A group's priority (-1000..1000): a higher priority's keys win over a lower one's."
    ),
]


@dataclass(frozen=True)
class Layer:
    """Which layer a command is about: its API path, its name in messages, its flags."""

    path: str
    label: str
    flags: str


def layer_of(device: str | None, group: str | None, tenant: bool) -> Layer:
    """The one layer the scope flags name, or a one-line error."""
    if sum(1 for given in (device, group, tenant) if given) != 1:
        raise CliError("give exactly one of --device DEVICE, --group GROUP or --tenant")
    if device:
        return Layer(
            f"/api/v1/config/devices/{quote(device, safe='')}",
            f"device {device}",
            f"--device {device}",
        )
    if group:
        return Layer(
            f"/api/v1/config/groups/{quote(group, safe='')}", f"group {group}", f"--group {group}"
        )
    return Layer("/api/v1/config/tenant", "tenant", "--tenant")


def _write(api: Api, method: str, path: str, body: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    params = {"dry_run": "true"} if dry_run else None
    answer: dict[str, Any] = api.request(method, path, params=params, body=body)
    return answer


def _report(layer: Layer, result: dict[str, Any], dry_run: bool, json_output: bool) -> None:
    if json_output:
        print_json(result)
        return
    version, reach = result["layer"]["version"], views.devices_text(result["affected_devices"])
    if result.get("unchanged"):
        typer.echo(f"No change; {layer.label} stays at version {version}.")
        return
    if dry_run:
        typer.echo(
            f"Dry run: {layer.label} would become version {version}, reaching {reach}; "
            "nothing was changed."
        )
    else:
        typer.echo(f"{layer.label} is now at version {version}, reaching {reach}.")
    views.print_changes(result["changes"])


@app.command()
def get(
    key: Annotated[str | None, typer.Argument(help="Only this key's value.")] = None,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """A layer's own values (secrets by name only); `config show` merges them for a device."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        found: dict[str, Any] = api.get(layer.path)
    if key is None and json_output:
        print_json(found)
        return
    if key is None:
        views.print_layer(found, layer.label)
        return
    secret = key in found["secrets"]
    if key not in found["values"] and not secret:
        raise CliError(
            f"{key} is not set in {layer.label} (version {found['version']}); "
            f"see its keys with: signalbeam config get {layer.flags}"
        )
    value = None if secret else found["values"][key]
    if json_output:
        print_json({"key": key, "value": value, "secret": secret})
        return
    typer.echo(views.SECRET_SET if secret else views.display(value))


@app.command()
def show(
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """A device's effective config, where each value came from, and whether it applied it."""
    layer_of(device, group, tenant)
    if device is None:
        raise CliError(
            "config show needs --device DEVICE: only a device has a merged config "
            "(see a layer's own values with: signalbeam config get)"
        )
    with connect() as api:
        found: dict[str, Any] = api.get(f"/api/v1/devices/{quote(device, safe='')}/config")
    if json_output:
        print_json(found)
        return
    views.print_effective(found)


@app.command("set", help=f"Set keys and secrets of a layer: a new version. {views.VALUE_HELP}")
def set_(
    pairs: Annotated[
        list[str] | None, typer.Argument(metavar="KEY=VALUE...", help="Keys to set.")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="A secret (repeatable): stored encrypted, never shown back. KEY alone asks "
            "for the value without echo.",
        ),
    ] = None,
    priority: Priority = None,
    message: Message = "",
    dry_run: DryRun = False,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    layer = layer_of(device, group, tenant)
    values = dict(views.assignment(pair) for pair in pairs or [])
    secrets = dict(views.secret_value(item) for item in secret or [])
    if not values and not secrets and priority is None:
        raise CliError("nothing to set: give KEY=VALUE, --secret KEY=VALUE or --priority N")
    body: dict[str, Any] = {
        "set": {key: views.parse_value(text) for key, text in values.items()},
        "secrets": secrets,
        "message": message,
    }
    if priority is not None:
        body["priority"] = priority
    with connect() as api:
        result = _write(api, "PATCH", layer.path, body, dry_run)
    _report(layer, result, dry_run, json_output)


@app.command()
def unset(
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Keys or secrets.")],
    message: Message = "",
    dry_run: DryRun = False,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """Remove keys (values or secrets) from a layer: a new version."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        result = _write(api, "PATCH", layer.path, {"unset": keys, "message": message}, dry_run)
    _report(layer, result, dry_run, json_output)


def _edited(found: dict[str, Any], layer: Layer, file: str | None) -> tuple[str, str] | None:
    """The new text and where it came from, or None when the editor saved nothing new."""
    if file == "-":
        return sys.stdin.read(), "stdin"
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8"), file
        except (OSError, UnicodeDecodeError) as err:
            raise CliError(f"cannot read {file}: {err}") from err
    text = click.edit(views.layer_yaml(found, layer.label), extension=".yaml")
    return None if text is None else (text, "the edited config")


def _keep(text: str, layer: Layer, err: CliError) -> CliError:
    """The error, plus where the edited text was kept so nothing typed is lost."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="signalbeam-config-", suffix=".yaml", delete=False, encoding="utf-8"
    ) as kept:
        kept.write(text)
    return CliError(
        f"{err.message}; your text is in {kept.name}: fix it and run "
        f"signalbeam config edit {layer.flags} --file {kept.name}",
        err.code,
    )


@app.command()
def edit(
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help="Take the layer's values from this YAML or JSON file ('-': stdin) "
            "instead of an editor, and apply them without asking.",
        ),
    ] = None,
    priority: Priority = None,
    message: Message = "",
    dry_run: DryRun = False,
    yes: YesFlag = False,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """Edit a layer's values as YAML in $EDITOR, see the changes, apply them (secrets kept)."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        found: dict[str, Any] = api.get(layer.path)
        edited = _edited(found, layer, file)
        if edited is None:
            typer.echo(f"No change; {layer.label} stays at version {found['version']}.")
            return
        text, where = edited
        body: dict[str, Any] = {"message": message, "expected_version": found["version"]}
        if priority is not None:
            body["priority"] = priority
        try:
            body["values"] = views.parse_document(text, where)
            preview = _write(api, "PUT", layer.path, body, dry_run=True)
        except CliError as err:
            raise (_keep(text, layer, err) if file is None else err) from None
        if _unchanged(found, preview):
            typer.echo(f"No change; {layer.label} stays at version {found['version']}.")
            return
        if dry_run:
            _report(layer, preview, True, json_output)
            return
        if file is None and not (yes or json_output):
            _confirm(layer, preview)
        result = _write(api, "PUT", layer.path, body, dry_run=False)
    _report(layer, result, False, json_output)


def _unchanged(found: dict[str, Any], preview: dict[str, Any]) -> bool:
    return not preview["changes"] and preview["layer"]["priority"] == found["priority"]


def _confirm(layer: Layer, preview: dict[str, Any]) -> None:
    """Show the changes and ask; a no is a one-line error (nothing was changed)."""
    typer.echo(f"Changes to {layer.label}:")
    views.print_changes(preview["changes"])
    reach = views.devices_text(preview["affected_devices"])
    if not typer.confirm(f"Apply them as version {preview['layer']['version']} ({reach})?"):
        raise CliError(f"not applied; {layer.label} is unchanged")


@app.command()
def history(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many newest.")] = 0,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """A layer's versions, newest first: who, when, why, which keys changed."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        page: dict[str, Any] = api.get(f"{layer.path}/history", {"limit": limit, "offset": offset})
    if json_output:
        print_json(page)
        return
    if not page["total"]:
        typer.echo(f"{layer.label} has no config versions yet.")
        return
    rows = [
        [
            str(item["version"]),
            ago(item["created_at"]),
            item["author"],
            item["message"] or "-",
            views.history_changes(item["changes"]),
        ]
        for item in page["items"]
    ]
    console().print(table(["VERSION", "WHEN", "AUTHOR", "MESSAGE", "CHANGES"], rows))
    typer.echo(page_footer(offset, len(rows), page["total"]))


@app.command()
def diff(
    old: Annotated[int, typer.Argument(metavar="V1", min=0, help="From this version (0: empty).")],
    new: Annotated[
        int | None, typer.Argument(metavar="V2", min=0, help="To this version (default: current).")
    ] = None,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """What changed between two versions of a layer (secrets: only that they changed)."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        if new is None:
            new = int(api.get(layer.path)["version"])
        found: dict[str, Any] = api.get(f"{layer.path}/diff", {"from": old, "to": new})
    if json_output:
        print_json(found)
        return
    typer.echo(f"{layer.label}, version {old} -> {new}:")
    views.print_changes(found["changes"])


@app.command()
def rollback(
    to: Annotated[int, typer.Option("--to", metavar="N", min=1, help="The version to bring back.")],
    message: Message = "",
    dry_run: DryRun = False,
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """Bring back version N's values and secrets as a new version."""
    layer = layer_of(device, group, tenant)
    with connect() as api:
        body = {"to": to, "message": message}
        result = _write(api, "POST", f"{layer.path}/rollback", body, dry_run)
    _report(layer, result, dry_run, json_output)


@app.command()
def status(
    device: DeviceOption = None,
    group: GroupOption = None,
    tenant: TenantOption = False,
    json_output: JsonFlag = False,
) -> None:
    """How many of a group's devices applied their config (or one device's status)."""
    layer_of(device, group, tenant)
    with connect() as api:
        if device is not None:
            found: dict[str, Any] = api.get(f"/api/v1/devices/{quote(device, safe='')}/config")
            if json_output:
                print_json(found["status"])
                return
            typer.echo(views.status_line(found["status"], found["digest"]))
            return
        if group is None:
            raise CliError("config status takes --group GROUP or --device DEVICE")
        counts: dict[str, int] = api.get(f"/api/v1/groups/{quote(group, safe='')}/config/status")
    if json_output:
        print_json(counts)
        return
    typer.echo(
        f"group {group}: {counts['applied']} applied, {counts['pending']} pending, "
        f"{counts['failed']} failed, {counts['none']} without config"
    )
