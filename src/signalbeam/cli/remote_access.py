"""`signalbeam remote-access`: whether operators may exec and open shells on the tenant's devices."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from signalbeam.cli.client import connect
from signalbeam.cli.output import JsonFlag, print_json

app = typer.Typer(
    help="The tenant's remote-access policy: exec, shell, copy and forward (logs need none).",
    no_args_is_help=True,
)
PATH = "/api/v1/remote-access"


def describe(policy: dict[str, Any]) -> list[str]:
    """The policy as a person reads it: what operators may do now."""
    if not policy["enabled"]:
        return [
            "remote access: off (logs only; an admin turns it on with "
            "`signalbeam remote-access enable`)"
        ]
    rules: list[str] = policy["exec_allow"]
    if not rules:
        return ["remote access: on (operators may exec any command, open shells, copy, forward)"]
    return [
        "remote access: on, exec limited to these commands (no shell, copy or forward):",
        *(f"  {rule}" for rule in rules),
    ]


def _print(policy: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(policy)
        return
    for line in describe(policy):
        typer.echo(line)


@app.command()
def show(json_output: JsonFlag = False) -> None:
    """Show whether remote access is on and which commands it allows."""
    with connect() as api:
        _print(api.get(PATH), json_output)


@app.command()
def enable(
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="PATTERN",
            help="Allow only commands matching this pattern, e.g. 'systemctl status *' "
            "(repeatable; none: any command, and shells).",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Let operators exec (and, with no --allow, open shells) on devices whose agent allows it."""
    with connect() as api:
        _print(api.put(PATH, {"enabled": True, "exec_allow": allow or []}), json_output)


@app.command()
def disable(json_output: JsonFlag = False) -> None:
    """Turn remote access off: exec, shell, copy and forward are refused; logs still work."""
    with connect() as api:
        _print(api.put(PATH, {"enabled": False, "exec_allow": []}), json_output)
