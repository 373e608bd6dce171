"""Device actions over devices, a group or a selector; `--plan` shows which it would touch.

cordon, uncordon and rollback answer at once (a table); drain, restart (a unit),
restart-agent and reboot print a line per device as it answers, then wait for pending ones.
"""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer

from signalbeam.cli import action_progress
from signalbeam.cli.action_progress import BRING_BACK, EXIT_INTERRUPTED, Progress
from signalbeam.cli.arguments import duration
from signalbeam.cli.client import connect
from signalbeam.cli.output import CliError, JsonFlag, console, print_json, table
from signalbeam.domain.durations import parse_duration

DevicesArg = Annotated[
    list[str] | None, typer.Argument(metavar="[DEVICE]...", help="Device ids (or use a target).")
]
GroupOpt = Annotated[str | None, typer.Option(help="Every live device of this group.")]
SelectorOpt = Annotated[
    str | None, typer.Option(help='Every live device matching, e.g. "env=prod,site=oslo".')
]
PlanFlag = Annotated[bool, typer.Option("--plan", help="Show which devices it would touch.")]
NoWaitFlag = Annotated[
    bool, typer.Option("--no-wait", help="Return once asked; do not wait for the devices.")
]
TimeoutOpt = Annotated[str, typer.Option(help="How long to wait for the devices, e.g. 5m.")]
UnitArgs = Annotated[
    list[str],
    typer.Argument(
        metavar="[DEVICE]... UNIT",
        help="Device ids, then the container or app to restart (only the unit with a target).",
    ),
]


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


def act(
    action: str,
    body: dict[str, Any],
    plan: bool,
    json_output: bool,
    wait: str | None = None,
    footer: str | None = None,
) -> None:
    """Run an action with a line per device as it answers; wait for pending ones if asked."""
    if plan:
        run(action, body, plan, json_output)
        return
    progress = Progress(action, quiet=json_output)
    if not json_output:
        typer.echo(f"{action}:")
    seconds = None if wait is None else parse_duration(duration(wait, "--timeout")).total_seconds()
    # Scripts start background jobs with SIGINT ignored; Ctrl-C must still stop the watching.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with connect() as api:
            action_progress.stream(api, {"action": action, **body}, progress)
            if seconds is not None:
                action_progress.wait(api, progress, seconds)
    except KeyboardInterrupt:
        # Only the watching stops: the server finishes the action and records every result.
        typer.echo(action_progress.interrupted(progress), err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if json_output:
        print_json({"action": action, "plan": False, "devices": list(progress.devices.values())})
    else:
        typer.echo(progress.counts())
        if footer:
            typer.echo(footer)
    if progress.failed():
        raise typer.Exit(1)


def restart(
    names: UnitArgs,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Restart one container or app of the bundle: stopped cleanly, started again."""
    *devices, unit = names
    act("restart", {**target(devices, group, selector), "unit": unit}, plan, json_output)


def restart_agent(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    json_output: JsonFlag = False,
) -> None:
    """Restart the agent on devices; what the bundle runs keeps running."""
    act("restart-agent", target(devices, group, selector), plan, json_output)


def reboot(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    no_wait: NoWaitFlag = False,
    timeout: TimeoutOpt = "5m",
    json_output: JsonFlag = False,
) -> None:
    """Reboot devices (their reboot_command) and wait until each is back with a new boot id."""
    wait = None if no_wait else timeout
    act("reboot", target(devices, group, selector), plan, json_output, wait)


def drain(
    devices: DevicesArg = None,
    group: GroupOpt = None,
    selector: SelectorOpt = None,
    plan: PlanFlag = False,
    no_wait: NoWaitFlag = False,
    timeout: TimeoutOpt = "2m",
    json_output: JsonFlag = False,
) -> None:
    """Cordon devices, then stop their bundle's units and keep them stopped.

    Bring one back with `signalbeam uncordon DEVICE` then `signalbeam rollback DEVICE`.
    """
    wait = None if no_wait else timeout
    act("drain", target(devices, group, selector), plan, json_output, wait, BRING_BACK)
