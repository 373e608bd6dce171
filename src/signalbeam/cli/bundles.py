"""`signalbeam bundles` and `signalbeam assign`: push versions, inspect and diff them, assign them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from signalbeam.cli.client import connect
from signalbeam.cli.output import (
    CliError,
    JsonFlag,
    ago,
    console,
    details,
    print_json,
    table,
)
from signalbeam.domain.errors import DomainError
from signalbeam.domain.semver import split_ref
from signalbeam.protocol.bundle_yaml import dump_yaml, load_yaml

app = typer.Typer(
    help="Bundles: what devices run, as immutable semver versions.", no_args_is_help=True
)
BUNDLE_COLUMNS = ["NAME", "LATEST", "VERSIONS", "RUNNING", "DESIRED", "UPDATED"]
VERSION_COLUMNS = ["VERSION", "DIGEST", "RUNNING", "DESIRED", "PUSHED", "BY", "DESCRIPTION"]
DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("+", "green"), ("-", "red"), ("@@", "cyan"))


def bundle_path(name: str, version: str | None = None) -> str:
    """The API path of a bundle, or of one of its versions."""
    path = f"/api/v1/bundles/{quote(name, safe='')}"
    return f"{path}/versions/{quote(version, safe='')}" if version else path


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…`: enough to tell versions apart."""
    return digest[:19] + "…"


def _ref(text: str) -> tuple[str, str | None]:
    try:
        return split_ref(text)
    except DomainError as err:
        raise CliError(err.detail) from err


def _read(file: str) -> tuple[str, str]:
    """The text of FILE (or of stdin for `-`) and the name to use for it in messages."""
    if file == "-":
        return sys.stdin.read(), "stdin"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except FileNotFoundError as err:
        raise CliError(f"{file}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"{file}: cannot read it ({err})") from err


def decode(text: str, source: str) -> Any:
    """A bundle document from YAML or JSON text; a syntax error is one line naming where."""
    if source.endswith(".json") or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise CliError(
                f"{source}: JSON syntax error at line {err.lineno}, column {err.colno}: {err.msg}"
            ) from err
    try:
        return load_yaml(text, source=source)
    except DomainError as err:
        raise CliError(err.detail) from err


@app.command()
def push(
    file: Annotated[
        str,
        typer.Option(
            "--file", "-f", metavar="FILE", help="Bundle spec, YAML or JSON; - for stdin."
        ),
    ],
    sign_with: Annotated[
        str | None,
        typer.Option(
            "--sign-with", metavar="KEY", help="Sign it with this local key (signalbeam keys)."
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Push a bundle version; pushing the same version with the same content again is harmless."""
    document = decode(*_read(file))
    with connect() as api:
        pushed: dict[str, Any] = api.post("/api/v1/bundles", document)
        signer = None
        if sign_with is not None:
            from signalbeam.cli.keys import sign_version

            signer = sign_version(
                api, pushed["name"], pushed["version"], _canonical(document), sign_with
            )
    if json_output:
        print_json({**pushed, "signed_by": signer})
        return
    verb = "pushed" if pushed["created"] else "already pushed"
    signed = f", signed by {signer}" if signer else ""
    typer.echo(
        f"{verb} {pushed['name']}@{pushed['version']} ({short_digest(pushed['digest'])}{signed})"
    )


def _canonical(document: Any) -> dict[str, Any] | None:
    """The canonical form of a fully pinned document, or None when the server must resolve it."""
    from signalbeam.protocol.bundle_v1 import parse_bundle

    try:
        return parse_bundle(document).canonical()
    except DomainError:
        return None


@app.command("ls")
def list_bundles(json_output: JsonFlag = False) -> None:
    """List bundles: latest version, how many versions, devices running and desiring them."""
    with connect() as api:
        bundles: list[dict[str, Any]] = api.get("/api/v1/bundles")
    if json_output:
        print_json(bundles)
        return
    if not bundles:
        typer.echo("No bundles yet; push one with: signalbeam bundles push -f bundle.yaml")
        return
    rows = [
        [
            b["name"],
            b["latest_version"],
            str(b["version_count"]),
            str(b["running"]),
            str(b["desired"]),
            ago(b["updated_at"]),
        ]
        for b in bundles
    ]
    console().print(table(BUNDLE_COLUMNS, rows))


def _show_versions(bundle: dict[str, Any]) -> None:
    out = console()
    summary = [
        ("latest", bundle["latest_version"]),
        ("versions", str(bundle["version_count"])),
        ("running", f"{bundle['running']} devices"),
        ("desired", f"{bundle['desired']} devices"),
        ("updated", ago(bundle["updated_at"])),
    ]
    out.print(details(summary, title=bundle["name"]))
    out.print()
    rows = [
        [
            v["version"],
            short_digest(v["digest"]),
            str(v["running"]),
            str(v["desired"]),
            ago(v["created_at"]),
            v["created_by"],
            v["description"] or "-",
        ]
        for v in bundle["versions"]
    ]
    out.print(table(VERSION_COLUMNS, rows))


@app.command()
def show(
    ref: Annotated[
        str, typer.Argument(metavar="NAME[@VERSION]", help="A bundle, or one version (or @latest).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Show a bundle's versions, or one version's spec as YAML (ready to edit and push again)."""
    name, version = _ref(ref)
    with connect() as api:
        found: dict[str, Any] = api.get(bundle_path(name, version))
    if json_output:
        print_json(found)
        return
    if version is None:
        _show_versions(found)
        return
    typer.echo(f"# {found['name']}@{found['version']} {found['digest']}")
    typer.echo(f"# pushed {ago(found['created_at'])} by {found['created_by']}")
    typer.echo(dump_yaml(found["spec"]), nl=False)


def _coloured(line: str) -> str:
    for prefix, style in DIFF_STYLES:
        if line.startswith(prefix):
            return typer.style(line, bold=True) if style == "bold" else typer.style(line, fg=style)
    return line


@app.command()
def diff(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The bundle.")],
    before: Annotated[str, typer.Argument(metavar="V1", help="The older version.")],
    after: Annotated[str, typer.Argument(metavar="V2", help="The newer version (or latest).")],
    json_output: JsonFlag = False,
) -> None:
    """Show what changed between two versions, as a unified diff of their YAML."""
    with connect() as api:
        result: dict[str, Any] = api.get(f"{bundle_path(name)}/diff", {"from": before, "to": after})
    if json_output:
        print_json(result)
        return
    if not result["diff"]:
        versions = f"{name}@{result['from_version']} and {name}@{result['to_version']}"
        typer.echo(f"{versions} are identical")
        return
    colour = sys.stdout.isatty()
    for line in result["diff"].splitlines():
        typer.echo(_coloured(line) if colour else line)


def assign(
    ref: Annotated[
        str, typer.Argument(metavar="NAME@VERSION", help="The bundle version (NAME alone: latest).")
    ],
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="A device id (repeat for more).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Every live device of this group.")] = None,
    selector: Annotated[
        str | None, typer.Option(help='Every live device matching, e.g. "env=prod,site=oslo".')
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Make a bundle version the desired state of devices, a group or a selector."""
    name, version = _ref(ref)
    targets = {"devices": device or None, "group": group, "selector": selector}
    given = {key: value for key, value in targets.items() if value is not None}
    if len(given) != 1:
        raise CliError("give exactly one of --device (repeatable), --group or --selector")
    with connect() as api:
        result: dict[str, Any] = api.post(f"{bundle_path(name, version or 'latest')}/assign", given)
    if json_output:
        print_json(result)
        return
    devices = result["devices"]
    count = f"{len(devices)} device" + ("" if len(devices) == 1 else "s")
    typer.echo(f"Assigned {result['bundle']}@{result['version']} to {count}:")
    rows = [[d["device_id"], str(d["generation"])] for d in devices]
    console().print(table(["DEVICE", "GENERATION"], rows))
    if result.get("cordoned"):
        typer.echo(f"Left out, cordoned: {', '.join(result['cordoned'])}")
