"""`signalbeam events`: the activity log, as pages and as a live stream."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from signalbeam.cli import arguments, sse
from signalbeam.cli.client import Api, Params, ProblemError, Unreachable, connect
from signalbeam.cli.output import JsonFlag, console, local_time, print_json
from signalbeam.cli.views import event_table

app = typer.Typer(
    help="The activity log: what happened, when, to which device.", no_args_is_help=True
)
Device = Annotated[str | None, typer.Option("--device", help="Only events of this device.")]
Types = Annotated[
    list[str] | None,
    typer.Option("--type", help="Only this event type, e.g. device.online (repeatable)."),
]


@app.command("ls")
def list_events(
    device: Device = None,
    types: Types = None,
    since: Annotated[
        str | None, typer.Option(help="Only newer events: 1h, 7d, or a time (2024-05-01T12:00).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many events.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """List events, newest first."""
    params: Params = {
        "device": device,
        "type": types,
        "since": arguments.since(since) if since else None,
        "limit": limit,
    }
    with connect() as api:
        page: dict[str, Any] = api.get("/api/v1/events", params)
    if json_output:
        print_json(page)
        return
    if not page["items"]:
        typer.echo("No events match.")
        return
    console().print(event_table(page["items"]))
    if page["next_before_id"] is not None:
        typer.echo(f"Showing the newest {limit}; raise --limit to see more.", err=True)


@dataclass
class Backoff:
    """Waits that double after each failed attempt, up to a ceiling, and reset on success."""

    first: float = 0.5
    ceiling: float = 15.0
    current: float = field(default=0.0, init=False)

    def next(self) -> float:
        """How long to wait before the next attempt."""
        self.current = min(self.current * 2, self.ceiling) if self.current else self.first
        return self.current

    def reset(self) -> None:
        """Start again from the shortest wait."""
        self.current = 0.0


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _print_event(frame: sse.Frame, as_json: bool) -> None:
    try:
        event: dict[str, Any] = json.loads(frame.data)
    except ValueError:
        _note(f"skipped an event that is not JSON (id {frame.id})")
        return
    if as_json:
        typer.echo(json.dumps(event, ensure_ascii=False))
        return
    when, device = local_time(event.get("created_at")), event.get("device_id") or "-"
    typer.echo(f"{when}  {frame.event:<26} {device}  {event.get('message', '')}")


class Watch:
    """Follows the event stream, resuming after the last event seen whenever it is cut."""

    def __init__(self, api: Api, params: Params, as_json: bool) -> None:
        self.api = api
        self.params = params
        self.as_json = as_json
        self.last_id = 0
        self.connected = False
        self.backoff = Backoff()

    def start(self) -> None:
        """Remember the newest event so the stream prints only what happens from now on."""
        if self.params.get("device") or self.params.get("type"):
            # The stream accepts any filter; listing first reports a typo in a type or device id.
            self.api.get("/api/v1/events", {**self.params, "limit": 1})
        page: dict[str, Any] = self.api.get("/api/v1/events", {"limit": 1})
        self.last_id = page["items"][0]["id"] if page["items"] else 0

    def follow(self) -> None:
        """Read one connection until it ends; raises ApiError when it cannot be opened."""
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(self.last_id)}
        with self.api.stream("/api/v1/events/stream", self.params, headers) as response:
            where = "" if self.connected else f" on {self.api.server}; press Ctrl-C to stop"
            _note(f"{'reconnected' if self.connected else 'watching events'}{where}")
            self.connected = True
            self.backoff.reset()
            for frame in sse.frames(response.iter_lines()):
                if frame.id is not None and frame.id.isdigit():
                    self.last_id = int(frame.id)
                _print_event(frame, self.as_json)

    def run(self) -> None:
        """Follow the stream forever, reconnecting with a growing pause after each cut."""
        self.start()
        while True:
            try:
                self.follow()
                reason = "the server ended the stream"
            except Unreachable as err:
                reason = err.reason
            except ProblemError as err:
                if err.status < 500:
                    raise
                reason = err.message
            pause = self.backoff.next()
            _note(f"connection lost ({reason}); reconnecting in {pause:g}s")
            time.sleep(pause)


@app.command()
def watch(device: Device = None, types: Types = None, json_output: JsonFlag = False) -> None:
    """Print events as they happen, one per line, until Ctrl-C."""
    params: Params = {"device": device, "type": types}
    # Scripts start background jobs with SIGINT ignored; Ctrl-C must still stop a watch.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with connect() as api:
            Watch(api, params, json_output).run()
    except KeyboardInterrupt:
        # Ctrl-C is how a person stops watching: a normal end, not a failure.
        return
