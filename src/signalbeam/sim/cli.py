"""`signalbeam sim`: run a fleet of virtual devices against a server until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from signalbeam.cli import arguments
from signalbeam.cli.output import CliError
from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError
from signalbeam.sim.stats import render

if TYPE_CHECKING:
    from signalbeam.sim.device import Behaviour
    from signalbeam.sim.fleet import Fleet, FleetConfig
    from signalbeam.sim.outages import Outage

# The fleet (httpx, the protocol models) is imported inside the command that runs it,
# so every other `signalbeam` command starts without paying for it.

STATUS_EVERY_SECONDS = 10.0
# The device API holds a watch for at most this long (`GET /api/device/v1/watch?timeout=`).
MAX_WATCH_TIMEOUT_SECONDS = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

app = typer.Typer(help="Simulate a fleet of devices speaking the real device API.")


def _seconds(text: str, option: str) -> float:
    try:
        return parse_duration(text, field=option).total_seconds()
    except DomainError as err:
        raise CliError(f"{option}: {err.detail}") from err


def _fraction(value: float, option: str) -> float:
    if not 0 <= value <= 1:
        raise CliError(f"{option} must be between 0 and 1 (a fraction of the devices), not {value}")
    return value


def _labels(text: str) -> dict[str, str]:
    return arguments.labels(part.strip() for part in text.split(",") if part.strip())


def _positive(text: str, option: str) -> float:
    seconds = _seconds(text, option)
    if seconds <= 0:
        raise CliError(f"{option} must be longer than 0s")
    return seconds


def _behaviour(
    interval: str,
    watch: tuple[bool, str],
    fail_rate: float,
    apply_time: str,
    sessions: tuple[bool, str],
) -> Behaviour:
    from signalbeam.sim.device import Behaviour

    answer_sessions, log_interval = sessions
    watching, watch_timeout = watch
    held = _positive(watch_timeout, "--watch-timeout")
    if held > MAX_WATCH_TIMEOUT_SECONDS:
        raise CliError(
            f"--watch-timeout is at most {MAX_WATCH_TIMEOUT_SECONDS:g}s (the server holds a "
            f"watch no longer), not {watch_timeout}"
        )
    return Behaviour(
        interval=_positive(interval, "--interval"),
        watch=watching,
        watch_timeout=held,
        fail_rate=_fraction(fail_rate, "--fail-rate"),
        apply_time=_seconds(apply_time, "--apply-time"),
        answer_sessions=answer_sessions,
        log_interval=_positive(log_interval, "--log-interval"),
    )


ServerUrl = Annotated[str, typer.Option("--server", help="Server URL, e.g. http://127.0.0.1:8420")]
EnrollmentToken = Annotated[
    str,
    typer.Option(
        "--token", envvar="SIGNALBEAM_ENROLLMENT_TOKEN", help="Enrollment token (sbe_...)"
    ),
]
Devices = Annotated[int, typer.Option("--devices", min=1, help="How many virtual devices")]
Interval = Annotated[
    str, typer.Option(help="Sync interval, e.g. 10s (the server's interval hint is not followed)")
]
Watch = Annotated[bool, typer.Option(help="Hold a long-poll watch per device")]
WatchTimeout = Annotated[
    str, typer.Option(help="How long the server holds each watch (the agent's watch_timeout)")
]
AnswerSessions = Annotated[
    bool, typer.Option(help="Watching devices answer exec and logs sessions offered to them")
]
LogInterval = Annotated[str, typer.Option(help="How often a followed log gets a new line")]
Ramp = Annotated[
    str | None, typer.Option(help="Spread the first syncs over this long [default: --interval]")
]
FailRate = Annotated[float, typer.Option(help="Fraction of updates that fail")]
ApplyTime = Annotated[str, typer.Option(help="How long applying an update takes")]
Labels = Annotated[str, typer.Option(help="Labels for every device: k=v,k2=v2")]
Prefix = Annotated[str, typer.Option(help="Device ids are {prefix}{i:05d}")]
StateFile = Annotated[
    Path | None,
    typer.Option(help="Where credentials are kept [default: ./.signalbeam-sim/<host_port>.json]"),
]
OfflineFraction = Annotated[
    float, typer.Option(help="Fraction of devices SIGUSR1 takes offline (and back)")
]
OutageSpecs = Annotated[
    list[str] | None,
    typer.Option(
        "--outage",
        help="COUNT:FOR[@AT]: COUNT devices (or 25%) go silent AT after the start (default 1m) "
        "for FOR, as if a site lost power, e.g. 300:60s@2m; repeat for more sites",
    ),
]
Duration = Annotated[str, typer.Option(help="Stop after this long; 0 runs until Ctrl-C")]
Seed = Annotated[int, typer.Option(help="Seed for metrics, jitter and failures")]
JsonSummary = Annotated[bool, typer.Option("--json", help="Print the summary as JSON")]


@app.callback(invoke_without_command=True)
def simulate(
    server: ServerUrl,
    token: EnrollmentToken,
    devices: Devices,
    interval: Interval = "10s",
    watch: Watch = False,
    watch_timeout: WatchTimeout = "30s",
    answer_sessions: AnswerSessions = True,
    log_interval: LogInterval = "1s",
    ramp: Ramp = None,
    fail_rate: FailRate = 0.1,
    apply_time: ApplyTime = "2s",
    labels: Labels = "",
    prefix: Prefix = "sim-",
    state_file: StateFile = None,
    offline_fraction: OfflineFraction = 0.0,
    outage: OutageSpecs = None,
    duration: Duration = "0",
    seed: Seed = 0,
    json_output: JsonSummary = False,
) -> None:
    """Enroll N virtual devices (once), then sync them until Ctrl-C or --duration; print a summary."""
    from signalbeam.sim.fleet import FleetConfig

    config = FleetConfig(
        server=server,
        token=token,
        devices=devices,
        behaviour=_behaviour(
            interval,
            (watch, watch_timeout),
            fail_rate,
            apply_time,
            (answer_sessions, log_interval),
        ),
        labels=_labels(labels),
        prefix=prefix,
        state_file=state_file,
        seed=seed,
        ramp=None if ramp is None else _seconds(ramp, "--ramp"),
    )
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    fraction = _fraction(offline_fraction, "--offline-fraction")
    outages = _outages(outage or [])
    summary = _run(config, _seconds(duration, "--duration"), fraction, outages)
    _print_summary(summary, json_output)
    if summary["devices"] and summary["stopped"] == summary["devices"]:
        raise CliError(
            "the server refused every device (decommissioned, or the state file "
            f"{config.state_path} belongs to another server database: delete it to enroll again)"
        )


def _outages(specs: list[str]) -> list[Outage]:
    from signalbeam.sim.outages import OutageError, parse_outage

    try:
        return [parse_outage(spec) for spec in specs]
    except OutageError as err:
        raise CliError(str(err)) from err


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo("\n".join(["simulation summary", *render(summary)]))


def _run(
    config: FleetConfig, duration: float, offline_fraction: float, outages: list[Outage]
) -> dict[str, Any]:
    from signalbeam.sim.fleet import SimError
    from signalbeam.sim.identities import StateFileError

    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(simulate_fleet(config, duration, offline_fraction, outages))
    except (SimError, StateFileError) as err:
        raise CliError(str(err)) from err


async def simulate_fleet(
    config: FleetConfig,
    duration: float,
    offline_fraction: float,
    outages: list[Outage] | None = None,
) -> dict[str, Any]:
    """Run the fleet until SIGINT/SIGTERM or `duration` (0: forever); return its summary."""
    from signalbeam.sim.fleet import Fleet
    from signalbeam.sim.heap import settle_heap

    fleet = Fleet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    _install_signals(loop, stop, fleet, offline_fraction)
    scheduled: asyncio.Task[None] | None = None
    try:
        if await _unless_stopped(fleet.start(), stop):
            settle_heap()
            _announce(fleet, duration)
            scheduled = _schedule(fleet, outages or [])
            await _report_until(fleet, stop, duration)
    finally:
        if scheduled is not None:
            scheduled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduled
        await fleet.stop()
        for sig in (*STOP_SIGNALS, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
    return fleet.summary()


def _schedule(fleet: Fleet, outages: list[Outage]) -> asyncio.Task[None] | None:
    """Start the outages' clock now that every device is enrolled and starting."""
    from signalbeam.sim.outages import run_outages

    if not outages:
        return None

    def say(line: str) -> None:
        typer.echo(line, err=True)

    return asyncio.get_running_loop().create_task(
        run_outages(fleet, outages, list(fleet.devices), say)
    )


def _install_signals(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, fleet: Fleet, fraction: float
) -> None:
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)

    def toggle() -> None:
        if fraction <= 0:
            typer.echo(
                "SIGUSR1 ignored: start with --offline-fraction 0.2 to toggle devices", err=True
            )
            return
        typer.echo(f"SIGUSR1: {fleet.toggle_offline(fraction)}", err=True)

    loop.add_signal_handler(signal.SIGUSR1, toggle)


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` is set first (then cancel it); True when it completed."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _announce(fleet: Fleet, duration: float) -> None:
    stats, behaviour = fleet.stats, fleet.config.behaviour
    until = f"for {duration:g}s" if duration > 0 else "until Ctrl-C"
    typer.echo(
        f"simulating {stats.devices} devices against {fleet.config.server_url} "
        f"({stats.enrolled} enrolled now, {stats.reused} from {fleet.config.state_path}), "
        f"syncing every {behaviour.interval:g}s{' with watch' if behaviour.watch else ''}, {until}",
        err=True,
    )


async def _report_until(fleet: Fleet, stop: asyncio.Event, duration: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration > 0 else None
    while not stop.is_set():
        wait = STATUS_EVERY_SECONDS
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await stop.wait()
        if not stop.is_set():
            typer.echo(_status_line(fleet), err=True)
            if fleet.stats.stopped == fleet.stats.devices:
                return


def _status_line(fleet: Fleet) -> str:
    summary = fleet.summary()
    p95 = summary["sync_latency_ms"]["p95"]
    return (
        f"[{summary['elapsed_seconds']:>6.0f}s] {summary['online']} online, "
        f"{summary['offline']} offline, {summary['stopped']} stopped; syncs "
        f"{summary['syncs_ok']} ok / {summary['syncs_failed']} failed, p95 "
        f"{'-' if p95 is None else f'{p95:.1f} ms'}; applies {summary['applies_ok']} ok / "
        f"{summary['applies_failed']} failed"
    )
