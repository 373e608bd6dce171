"""`signalbeam cordon` / `uncordon` / `rollback`: device actions over devices, a group or a selector."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from signalbeam.cli.client import connect
from signalbeam.cli.output import CliError, JsonFlag, console, print_json, table

DevicesArg = Annotated[
    list[str] | None, typer.Argument(metavar="[DEVICE]...", help="Device ids (or use a target).")
]
GroupOpt = Annotated[str | None, typer.Option(help="Every live device of this group.")]
SelectorOpt = Annotated[
    str | None, typer.Option(help='Every live device matching, e.g. "env=prod,site=oslo".')
]
PlanFlag = Annotated[bool, typer.Option("--plan", help="Show which devices it would touch.")]


def target(devices: list[str] | None, group: str | None, selector: str | None) -> dict[str, Any]:
    """The one target the command names, as the API takes it."""
    given = {"devices": devices or None, "group": group, "selector": selector}
    chosen = {key: value for key, value in given.items() if value is not None}
    if len(chosen) != 1:
        raise CliError("name devices, or give exactly one of --group or --selector")
    return chosen


def run(action: str, body: dict[str, Any], plan: bool, json_output: bool) -> None:
    """Post the action and print each device's result."""
    with connect() as api:
        result: dict[str, Any] = api.post(
            "/api/v1/actions", {"action": action, "plan": plan, **body}
        )
    if json_output:
        print_json(result)
        return
    rows = [[d["device_id"], d["status"], d["detail"]] for d in result["devices"]]
    heading = f"{action} would touch:" if plan else f"{action}:"
    typer.echo(heading)
    console().print(table(["DEVICE", "RESULT", "DETAIL"], rows))


def cordon(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Leave devices out of new rollouts and assignments; what they run stays as it is."""
    run("cordon", target(devices, group, selector), plan, json_output)


def uncordon(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Let new rollouts and assignments include cordoned devices again."""
    run("uncordon", target(devices, group, selector), plan, json_output)


def rollback(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Give devices the bundle version they were given before their current one."""
    run("rollback", target(devices, group, selector), plan, json_output)
