"""`signalbeam rollouts`: move a target to a bundle version in waves, and watch it go."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from signalbeam.cli import sse
from signalbeam.cli.client import Api, ProblemError, Unreachable, connect
from signalbeam.cli.events import Backoff
from signalbeam.cli.output import CliError, JsonFlag, console, print_json, table
from signalbeam.cli.rollout_views import progress_line, ref, rollout_detail, rollout_table
from signalbeam.domain.errors import DomainError
from signalbeam.domain.rollout_state import RolloutEventType
from signalbeam.domain.semver import split_ref

app = typer.Typer(
    help="Rollouts: update a group, selector or device list in waves, with automatic rollback.",
    no_args_is_help=True,
)
RolloutId = Annotated[int, typer.Argument(metavar="ID", help="The rollout's id (rollouts ls).")]
OptText = str | None
# What moves a rollout's progress: its own events, and devices being given a version.
PROGRESS_TYPES = [t.value for t in RolloutEventType] + ["device.desired_state_changed"]
ENDED = {"completed", "cancelled", "rolled_back", "halted"}


def _path(rollout_id: int, action: str = "") -> str:
    return f"/api/v1/rollouts/{rollout_id}" + (f"/{action}" if action else "")


def _opt(help_text: str) -> Any:
    return typer.Option(help=help_text)


@app.command()
def create(
    bundle_ref: Annotated[
        str, typer.Argument(metavar="NAME@VERSION", help="The bundle version (NAME alone: latest).")
    ],
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="A device id (repeat for more).")
    ] = None,
    group: Annotated[OptText, _opt("Every live device of this group.")] = None,
    selector: Annotated[OptText, _opt('Every live device matching, e.g. "env=prod".')] = None,
    waves: Annotated[OptText, _opt("Cumulative wave sizes (default 1,10%,50%,100%).")] = None,
    success_threshold: Annotated[
        OptText, _opt("Share of a wave that must succeed (default 100%).")
    ] = None,
    failure_threshold: Annotated[
        OptText, _opt("Failures that halt: 30% of a wave, or 3 (default 30%).")
    ] = None,
    soak: Annotated[OptText, _opt("How long a device must stay healthy (default 60s).")] = None,
    apply_timeout: Annotated[
        OptText, _opt("How long a device may take to apply (default 15m).")
    ] = None,
    max_parallel: Annotated[int | None, _opt("At most this many devices updating at once.")] = None,
    window: Annotated[
        OptText, _opt('When devices may start updating, e.g. "Mon-Fri 01:00-05:00".')
    ] = None,
    on_failure: Annotated[OptText, _opt("rollback (default) or pause when a gate fails.")] = None,
    offline: Annotated[
        OptText, _opt("skip (default) or wait for devices offline when due.")
    ] = None,
    offline_wait: Annotated[
        OptText, _opt("How long to wait for an offline device first (default 10m).")
    ] = None,
    max_retries: Annotated[int | None, _opt("Retries of a transient failure (default 3).")] = None,
    retry_backoff: Annotated[
        OptText, _opt("Wait before the first retry, doubling after (default 30s).")
    ] = None,
    dynamic: Annotated[bool, _opt("Keep taking devices that join the target later.")] = False,
    plan: Annotated[
        bool, _opt("Only show which devices go in which wave; change nothing.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Start a rollout (or, with --plan, show what it would do)."""
    try:
        name, version = split_ref(bundle_ref)
    except DomainError as err:
        raise CliError(err.detail) from err
    targets = {"devices": device or None, "group": group, "selector": selector}
    given = {key: value for key, value in targets.items() if value is not None}
    if len(given) != 1:
        raise CliError("give exactly one of --device (repeatable), --group or --selector")
    policy = {
        "waves": waves,
        "success_threshold": success_threshold,
        "failure_threshold": failure_threshold,
        "soak": soak,
        "apply_timeout": apply_timeout,
        "max_parallel": max_parallel,
        "window": window,
        "on_failure": on_failure,
        "offline": offline,
        "offline_wait": offline_wait,
        "max_retries": max_retries,
        "retry_backoff": retry_backoff,
    }
    body: dict[str, Any] = {"bundle": name, "version": version or "latest", **given}
    body["dynamic"] = dynamic
    body.update({key: value for key, value in policy.items() if value is not None})
    params = {"plan": "true"} if plan else None
    with connect() as api:
        result: dict[str, Any] = api.request("POST", "/api/v1/rollouts", params=params, body=body)
    if json_output:
        print_json(result)
    elif plan:
        _print_plan(result)
    else:
        typer.echo(f"Started rollout {result['id']}: {ref(result)} to {result['wave_count']} waves")
        typer.echo(f"Follow it with: signalbeam rollouts watch {result['id']}")


def _print_plan(result: dict[str, Any]) -> None:
    offline = set(result["offline"])
    typer.echo(
        f"Plan for {result['bundle']}@{result['version']} to {result['devices']} devices "
        "(nothing was changed):"
    )
    rows = [
        [
            str(number),
            str(len(wave)),
            ", ".join(d + (" (offline)" if d in offline else "") for d in wave),
        ]
        for number, wave in enumerate(result["waves"], start=1)
    ]
    console().print(table(["WAVE", "DEVICES", "WHICH"], rows))
    if offline:
        typer.echo(f"{len(offline)} of them are offline now; they are skipped if they stay away.")


@app.command("ls")
def list_rollouts(
    status: Annotated[
        OptText, _opt("Only rollouts in this status (running, completed...).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """List rollouts, newest first."""
    with connect() as api:
        rollouts: list[dict[str, Any]] = api.get("/api/v1/rollouts", {"status": status})
    if json_output:
        print_json(rollouts)
    elif not rollouts:
        typer.echo(
            "No rollouts yet; start one with: signalbeam rollouts create NAME@VERSION --group G"
        )
    else:
        console().print(rollout_table(rollouts))


@app.command()
def show(
    rollout_id: RolloutId,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every line of each failed unit's log.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Show a rollout: per wave counts, every device's status with its reason, and the last
    lines of each failed device's failing unit."""
    with connect() as api:
        rollout: dict[str, Any] = api.get(_path(rollout_id))
    if json_output:
        print_json(rollout)
        return
    console().print(rollout_detail(rollout, verbose))


def _control(rollout_id: int, action: str, done: str, json_output: bool) -> None:
    with connect() as api:
        rollout: dict[str, Any] = api.post(_path(rollout_id, action))
    if json_output:
        print_json(rollout)
        return
    typer.echo(f"rollout {rollout['id']} ({ref(rollout)}) {done}; now {rollout['status']}")


@app.command()
def pause(rollout_id: RolloutId, json_output: JsonFlag = False) -> None:
    """Stop starting devices; devices already updating finish."""
    _control(rollout_id, "pause", "paused", json_output)


@app.command()
def resume(rollout_id: RolloutId, json_output: JsonFlag = False) -> None:
    """Continue a paused rollout, or a halted one (accepting its failures so far)."""
    _control(rollout_id, "resume", "resumed", json_output)


@app.command()
def cancel(rollout_id: RolloutId, json_output: JsonFlag = False) -> None:
    """Stop for good; devices already on the new version keep it."""
    _control(rollout_id, "cancel", "cancelled", json_output)


@app.command()
def rollback(rollout_id: RolloutId, json_output: JsonFlag = False) -> None:
    """Send every device this rollout changed back to the version it ran before."""
    _control(rollout_id, "rollback", "rolled back", json_output)


class RolloutWatch:
    """Prints a rollout's progress whenever it changes, until it ends."""

    def __init__(self, api: Api, rollout_id: int, as_json: bool) -> None:
        self.api = api
        self.rollout_id = rollout_id
        self.as_json = as_json
        self.last_id = 0
        self.shown = ""
        self.current: dict[str, Any] = {}
        self.backoff = Backoff()

    @property
    def ended(self) -> bool:
        """True once the rollout has finished, or halted waiting for a person."""
        return self.current.get("status") in ENDED

    def refresh(self) -> None:
        """Fetch the rollout and print it if anything changed."""
        self.current = self.api.get(_path(self.rollout_id))
        line = json.dumps(self.current) if self.as_json else progress_line(self.current)
        if line != self.shown:
            typer.echo(line)
            self.shown = line

    def run(self) -> None:
        """Follow the event stream, reconnecting after cuts; return once the rollout ended."""
        page: dict[str, Any] = self.api.get("/api/v1/events", {"limit": 1})
        self.last_id = page["items"][0]["id"] if page["items"] else 0
        self.refresh()
        while not self.ended:
            try:
                self.follow()
            except Unreachable as err:
                self._pause(err.reason)
            except ProblemError as err:
                if err.status < 500:
                    raise
                self._pause(err.message)
        _finish(self.current)

    def follow(self) -> None:
        """Refresh on every rollout event until the rollout ends or the stream does."""
        params = {"type": PROGRESS_TYPES}
        headers = {"Last-Event-ID": str(self.last_id)}
        with self.api.stream("/api/v1/events/stream", params, headers) as response:
            self.backoff.reset()
            # Anything missed before the stream opened is in the rollout itself.
            self.refresh()
            for frame in sse.frames(self._lines(response.iter_lines())):
                if frame.id is not None and frame.id.isdigit():
                    self.last_id = int(frame.id)
                self.refresh()
                if self.ended:
                    return

    def _lines(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            if self.ended:
                return
            if line.startswith(":"):
                # Events from an engine in another server process do not reach this stream
                # yet; the keep-alive is a chance to look at the rollout itself.
                self.refresh()
            yield line

    def _pause(self, reason: str) -> None:
        pause = self.backoff.next()
        typer.echo(f"connection lost ({reason}); reconnecting in {pause:g}s", err=True)
        time.sleep(pause)


def _finish(rollout: dict[str, Any]) -> None:
    label = f"rollout {rollout['id']} ({ref(rollout)})"
    if rollout["status"] in ("rolled_back", "halted"):
        hint = "" if rollout["status"] == "rolled_back" else "; resume it or roll it back"
        raise CliError(f"{label} {rollout['status'].replace('_', ' ')}: {rollout['reason']}{hint}")
    typer.echo(f"{label} {rollout['status']}: {rollout['reason']}")


@app.command()
def watch(rollout_id: RolloutId, json_output: JsonFlag = False) -> None:
    """Show progress live until the rollout ends (non-zero exit if it halts or rolls back)."""
    # Scripts start background jobs with SIGINT ignored; Ctrl-C must still stop a watch.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with connect() as api:
            RolloutWatch(api, rollout_id, json_output).run()
    except KeyboardInterrupt:
        return
