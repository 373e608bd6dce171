"""`signalbeam alerts notifiers`: where notifications go, a test send, the delivery log."""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import quote

import typer

from signalbeam.cli.client import connect
from signalbeam.cli.output import CliError, JsonFlag, ago, console, print_json, table

app = typer.Typer(help="Notifiers: webhook, slack, teams or email.", no_args_is_help=True)
NotifierName = Annotated[str, typer.Argument(metavar="NAME", help="The notifier's name.")]
NOTIFIERS = "/api/v1/alerts/notifiers"


def _path(name: str) -> str:
    return f"{NOTIFIERS}/{quote(name, safe='')}"


@app.command("add")
def add(
    name: NotifierName,
    kind: Annotated[str, typer.Option(help="webhook, slack, teams or email.")],
    url: Annotated[str | None, typer.Option(help="Where webhooks are POSTed.")] = None,
    min_severity: Annotated[
        str, typer.Option(help="info, warning or critical, and up.")
    ] = "warning",
    selector: Annotated[str | None, typer.Option(help="Only devices matching it.")] = None,
    smtp_host: Annotated[str | None, typer.Option(help="Email: the SMTP server.")] = None,
    smtp_port: Annotated[int, typer.Option(help="Email: its port.")] = 587,
    starttls: Annotated[bool, typer.Option("--starttls/--no-starttls")] = True,
    username: Annotated[str | None, typer.Option(help="Email: SMTP user.")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Email: the From address.")] = None,
    to: Annotated[list[str] | None, typer.Option(help="Email: a recipient (repeatable).")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(help="Read the signing key or SMTP password from this environment variable."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add a notifier. A webhook's signing key is made and shown once unless given."""
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "url": url,
        "min_severity": min_severity,
        "selector": selector,
    }
    if kind == "email":
        body.update(
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            starttls=starttls,
            username=username,
            sender=sender,
            to=to or [],
        )
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise CliError(f"--secret-env: ${secret_env} is empty or not set")
        body["secret"] = secret
    with connect() as api:
        created: dict[str, Any] = api.post(NOTIFIERS, body)
    if json_output:
        print_json(created)
        return
    typer.echo(
        f"Added notifier {name} ({kind}); test it with: signalbeam alerts notifiers test {name}"
    )
    if created.get("signing_key"):
        typer.echo(
            f"Signing key (shown once; receivers check X-SignalBeam-Signature with it):\n"
            f"  {created['signing_key']}"
        )


@app.command("ls")
def list_notifiers(json_output: JsonFlag = False) -> None:
    """List notifiers."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(NOTIFIERS)
    if json_output:
        print_json(found)
        return
    if not found:
        typer.echo(
            "No notifiers yet; add one with: signalbeam alerts notifiers add NAME --kind webhook --url URL"
        )
        return
    rows = [
        [
            n["name"],
            n["kind"],
            n["config"].get("url") or ", ".join(n["config"].get("to", [])),
            f"{n['min_severity']}+",
            n["selector"] or "-",
        ]
        for n in found
    ]
    console().print(table(["NAME", "KIND", "TO", "SEVERITY", "SELECTOR"], rows))


@app.command()
def test(name: NotifierName) -> None:
    """Send a test notification now and print what the receiver answered."""
    with connect() as api:
        result: dict[str, Any] = api.post(f"{_path(name)}/test")
    if not result["delivered"]:
        typer.echo(f"Test to {name} failed: {result['detail']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Test to {name} delivered ({result['detail']}).")


@app.command()
def deliveries(name: NotifierName, json_output: JsonFlag = False) -> None:
    """The notifier's latest deliveries and what each attempt got back."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(f"{_path(name)}/deliveries")
    if json_output:
        print_json(found)
        return
    rows = [
        [
            str(d["id"]),
            d["transition"],
            d["state"],
            str(d["attempts"]),
            d["last_result"] or "-",
            ago(d["created_at"]),
        ]
        for d in found
    ]
    console().print(table(["ID", "NOTICE", "STATE", "TRIES", "LAST RESULT", "QUEUED"], rows))


@app.command("rm")
def delete(name: NotifierName) -> None:
    """Remove a notifier."""
    with connect() as api:
        api.delete(_path(name))
    typer.echo(f"Removed notifier {name}.")
