"""`signalbeam tokens`: enrollment tokens that let devices join."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from signalbeam.cli import arguments
from signalbeam.cli.client import connect
from signalbeam.cli.output import JsonFlag, ago, console, labels_text, print_json, table

app = typer.Typer(help="Enrollment tokens: let devices join your fleet.", no_args_is_help=True)
PATH = "/api/v1/enrollment-tokens"


def _status(token: dict[str, Any]) -> Text:
    if token["revoked"]:
        return Text("revoked", style="red")
    if token["usable"]:
        return Text("usable", style="green")
    used_up = token["max_uses"] is not None and token["uses"] >= token["max_uses"]
    return Text("used up" if used_up else "expired", style="yellow")


def _uses(token: dict[str, Any]) -> str:
    limit = token["max_uses"]
    return f"{token['uses']}/{limit}" if limit is not None else str(token["uses"])


def _expiry(token: dict[str, Any]) -> str:
    return ago(token["expires_at"]) if token["expires_at"] else "never"


@app.command()
def create(
    expires: Annotated[str, typer.Option(help="How long it works: 24h, 7d, ... or never.")] = "24h",
    max_uses: Annotated[
        int | None, typer.Option(min=1, help="How many devices may use it [default: unlimited].")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="k=v label given to enrolled devices (repeatable).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Static group enrolled devices join.")] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Create an enrollment token and print it with the command a device runs to join."""
    body = {
        "expires_in": arguments.expires_in(expires),
        "max_uses": max_uses,
        "labels": arguments.labels(label or []),
        "group": group,
        "description": description,
    }
    with connect() as api:
        created: dict[str, Any] = api.post(PATH, body)
    if json_output:
        print_json(created)
        return
    uses = f", up to {max_uses} devices" if max_uses else ""
    typer.echo(f"Enrollment token {created['id']} (shown once; store it now):")
    typer.echo(f"  {created['token']}")
    typer.echo(f"Expires {_expiry(created)}{uses}; labels {labels_text(created['labels'])}")
    typer.echo("On a device, install the agent and join with:")
    typer.echo(f"  {created['install_command']}")


@app.command("ls")
def list_tokens(json_output: JsonFlag = False) -> None:
    """List enrollment tokens, newest first."""
    with connect() as api:
        tokens: list[dict[str, Any]] = api.get(PATH)
    if json_output:
        print_json(tokens)
        return
    if not tokens:
        typer.echo("No enrollment tokens yet; create one with: signalbeam tokens create")
        return
    rows = [
        [
            str(t["id"]),
            t["description"] or "-",
            _status(t),
            _uses(t),
            _expiry(t),
            labels_text(t["labels"]),
            t["group"] or "-",
            ago(t["created_at"]),
        ]
        for t in tokens
    ]
    columns = ["ID", "DESCRIPTION", "STATUS", "USES", "EXPIRES", "LABELS", "GROUP", "CREATED"]
    console().print(table(columns, rows))


@app.command()
def revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (tokens ls).")],
    json_output: JsonFlag = False,
) -> None:
    """Revoke an enrollment token; devices that already joined keep working."""
    with connect() as api:
        revoked: dict[str, Any] = api.delete(f"{PATH}/{token_id}")
    if json_output:
        print_json(revoked)
        return
    typer.echo(f"Revoked enrollment token {token_id}; enrolled devices are not affected.")
