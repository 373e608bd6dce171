"""`signalbeam webhooks`: recorded events POSTed as signed JSON, their test sends and log."""

from __future__ import annotations

import os
from typing import Annotated, Any
from urllib.parse import quote

import typer

from signalbeam.cli.client import connect
from signalbeam.cli.output import CliError, JsonFlag, ago, console, details, print_json, table

app = typer.Typer(
    help="Webhooks: events such as device.registered POSTed to a URL, signed.",
    no_args_is_help=True,
)
WebhookName = Annotated[str, typer.Argument(metavar="NAME", help="The webhook's name.")]
WEBHOOKS = "/api/v1/webhooks"
EVENT_HELP = "An event type, a family such as 'device.*', or '*' (repeatable or comma-separated)."
KEY_ENV_HELP = "Read the signing key from this environment variable (else one is made)."


def _path(name: str) -> str:
    return f"{WEBHOOKS}/{quote(name, safe='')}"


def _events(given: list[str] | None) -> list[str]:
    return [part.strip() for entry in given or [] for part in entry.split(",") if part.strip()]


def _secret(variable: str | None) -> str | None:
    if variable is None:
        return None
    secret = os.environ.get(variable)
    if not secret:
        raise CliError(f"--secret-env: ${variable} is empty or not set")
    return secret


@app.command("create")
def create(
    name: WebhookName,
    url: Annotated[str, typer.Option(help="Where events are POSTed (http or https).")],
    event: Annotated[list[str], typer.Option(help=EVENT_HELP)],
    selector: Annotated[
        str | None, typer.Option(help="Only events about devices matching it.")
    ] = None,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled")] = True,
    secret_env: Annotated[str | None, typer.Option(help=KEY_ENV_HELP)] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add a webhook. Its signing key is made and shown once unless given."""
    body: dict[str, Any] = {"name": name, "url": url, "events": _events(event)}
    body.update(selector=selector, enabled=enabled)
    if (secret := _secret(secret_env)) is not None:
        body["secret"] = secret
    with connect() as api:
        created: dict[str, Any] = api.post(WEBHOOKS, body)
    if json_output:
        print_json(created)
        return
    typer.echo(
        f"Added webhook {name} for {', '.join(created['events'])}; "
        f"test it with: signalbeam webhooks test {name}"
    )
    if created.get("secret"):
        typer.echo(
            "Signing key (shown once; receivers check X-SignalBeam-Signature with it):\n"
            f"  {created['secret']}"
        )


@app.command("ls")
def list_webhooks(json_output: JsonFlag = False) -> None:
    """List webhooks."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(WEBHOOKS)
    if json_output:
        print_json(found)
        return
    if not found:
        typer.echo(
            "No webhooks yet; add one with: "
            "signalbeam webhooks create NAME --url URL --event 'device.*'"
        )
        return
    rows = [
        [
            w["name"],
            w["url"],
            ", ".join(w["events"]),
            w["selector"] or "-",
            "on" if w["enabled"] else "off",
        ]
        for w in found
    ]
    console().print(table(["NAME", "URL", "EVENTS", "SELECTOR", "ENABLED"], rows))


def _print(webhook: dict[str, Any]) -> None:
    pairs = [
        ("url", webhook["url"]),
        ("events", ", ".join(webhook["events"])),
        ("selector", webhook["selector"] or "every device, and events about none"),
        ("enabled", "yes" if webhook["enabled"] else "no"),
        ("signing key", "set (write-only)" if webhook["has_secret"] else "none"),
        ("created", f"{ago(webhook['created_at'])} by {webhook['created_by']}"),
    ]
    console().print(details(pairs, title=f"webhook {webhook['name']}"))


@app.command()
def show(name: WebhookName, json_output: JsonFlag = False) -> None:
    """Show a webhook (never its signing key)."""
    with connect() as api:
        webhook: dict[str, Any] = api.get(_path(name))
    if json_output:
        print_json(webhook)
        return
    _print(webhook)


@app.command()
def update(
    name: WebhookName,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    event: Annotated[list[str] | None, typer.Option(help=EVENT_HELP + " Replaces them.")] = None,
    selector: Annotated[str | None, typer.Option(help="A new selector; '' for none.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    secret_env: Annotated[
        str | None, typer.Option(help="A new signing key from this variable.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Change a webhook; what is not given stays as it is."""
    body: dict[str, Any] = {"url": url, "selector": selector, "enabled": enabled}
    body = {key: value for key, value in body.items() if value is not None}
    if event:
        body["events"] = _events(event)
    if (secret := _secret(secret_env)) is not None:
        body["secret"] = secret
    if not body:
        raise CliError(
            "nothing to change: give --url, --event, --selector, --enabled/--disabled or --secret-env"
        )
    with connect() as api:
        webhook: dict[str, Any] = api.patch(_path(name), body)
    if json_output:
        print_json(webhook)
        return
    _print(webhook)


@app.command("rm")
def delete(name: WebhookName) -> None:
    """Remove a webhook and its delivery log."""
    with connect() as api:
        api.delete(_path(name))
    typer.echo(f"Removed webhook {name}.")


@app.command()
def test(name: WebhookName) -> None:
    """Send a webhook.test event now and print what the receiver answered."""
    with connect() as api:
        result: dict[str, Any] = api.post(f"{_path(name)}/test")
    if not result["delivered"]:
        typer.echo(f"Test to {name} failed: {result['detail']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Test to {name} delivered ({result['detail']}).")


@app.command()
def deliveries(name: WebhookName, json_output: JsonFlag = False) -> None:
    """The webhook's latest deliveries and what each attempt got back."""
    with connect() as api:
        found: list[dict[str, Any]] = api.get(f"{_path(name)}/deliveries")
    if json_output:
        print_json(found)
        return
    rows = [
        [
            str(d["id"]),
            d["event_type"],
            str(d["event_id"] or "-"),
            d["state"],
            str(d["attempts"]),
            d["last_result"] or "-",
            ago(d["created_at"]),
        ]
        for d in found
    ]
    columns = ["ID", "EVENT", "EVENT ID", "STATE", "TRIES", "LAST RESULT", "QUEUED"]
    console().print(table(columns, rows))


@app.command()
def redeliver(
    name: WebhookName,
    delivery_id: Annotated[int, typer.Argument(metavar="DELIVERY", help="The delivery's id.")],
) -> None:
    """Send a delivery again (a dead one, or one the receiver lost) with fresh retries."""
    with connect() as api:
        api.post(f"{_path(name)}/deliveries/{delivery_id}/redeliver")
    typer.echo(
        f"Delivery {delivery_id} of {name} queued again; see: signalbeam webhooks deliveries {name}"
    )
