"""`signalbeam logs`, `exec` and `shell`: a device's logs, a command on it, a terminal on it."""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated, Any

import typer

from signalbeam.cli import arguments, config, exec_fanout
from signalbeam.cli.client import Api
from signalbeam.cli.output import CliError, JsonFlag
from signalbeam.cli.session_input import InputPump, raw_mode, resizes, terminal_size
from signalbeam.cli.session_stream import Ending, SessionStream, ask, open_stream
from signalbeam.protocol.sessions import STDOUT

DeviceArg = Annotated[str, typer.Argument(metavar="DEVICE", help="The device's id.")]
UnitOpt = Annotated[
    str | None, typer.Option("--unit", help="Run inside this bundle unit (default: the host).")
]
NO_TERMINAL = "shell needs a terminal; use `signalbeam exec` for commands"
# What a process killed by SIGPIPE reports: the reader of our output went away.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 130


def write_output(stream: int, data: bytes) -> None:
    """Print device output as it comes: its stdout on our stdout, its stderr on our stderr."""
    target = sys.stdout.buffer if stream == STDOUT else sys.stderr.buffer
    target.write(data)
    target.flush()


def attach(device_id: str, kind: str, body: dict[str, Any]) -> SessionStream:
    """Ask for a session and open its stream; returns once the device has the request."""
    credentials = config.resolve()
    with Api(credentials.server, credentials.token) as api:
        created = ask(api, device_id, kind, body)
    stream = open_stream(credentials, created)
    try:
        stream.wait_started()
    except BaseException:
        stream.close()
        raise
    return stream


def relay(stream: SessionStream) -> Ending:
    """Print the session's output until it ends; a closed stdout (`| head`) ends it early."""
    try:
        return stream.read(write_output)
    except BrokenPipeError:
        # Nobody reads our output any more: stop the session, and keep Python's exit-time
        # flush from failing on the same pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Ending(EXIT_BROKEN_PIPE)
    finally:
        stream.close()


def finish(ending: Ending) -> None:
    """Exit as the session did: its exit code, or its error as one line."""
    if ending.error is not None:
        raise CliError(ending.error, ending.code)
    if ending.code:
        raise typer.Exit(ending.code)


def logs(
    device_id: DeviceArg,
    unit: Annotated[
        str | None,
        typer.Argument(metavar="[UNIT]", help="A bundle unit, `agent`; omit to list the units."),
    ] = None,
    tail: Annotated[int, typer.Option(min=0, help="Lines of history to show first.")] = 200,
    since: Annotated[str | None, typer.Option(help="Only lines newer than this, e.g. 1h.")] = None,
    grep: Annotated[str | None, typer.Option(help="Only lines matching this regex.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines; Ctrl-C stops (exit 0).")
    ] = False,
) -> None:
    """Print a unit's logs from a device: its stdout on stdout, its stderr on stderr.

    Without UNIT the device lists the units it can show. Ctrl-C ends the stream and exits 0.
    """
    body = {
        "unit": unit,
        "tail": tail,
        "since": arguments.duration(since, "--since") if since else None,
        "grep": grep,
        "follow": follow,
    }
    # Scripts start background jobs with SIGINT ignored; Ctrl-C must still stop a follow.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ending = relay(attach(device_id, "logs", body))
    except KeyboardInterrupt:
        return  # Ctrl-C is how a person stops following: a normal end.
    finish(ending)


def exec_(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[DEVICE] -- CMD [ARGS]...",
            help="The device and the command; with --selector or --group, the command only.",
        ),
    ],
    unit: UnitOpt = None,
    timeout: Annotated[
        str | None, typer.Option(help="Stop the command after this long, e.g. 30s.")
    ] = None,
    selector: Annotated[
        str | None, typer.Option(help='Run on every device matching, e.g. "env=prod".')
    ] = None,
    group: Annotated[str | None, typer.Option(help="Run on every device of this group.")] = None,
    parallel: Annotated[
        int, typer.Option(min=1, max=100, help="Devices at a time with --selector/--group.")
    ] = 10,
    json_output: JsonFlag = False,
) -> None:
    """Run a command on a device and exit with its exit code (255: the connection was lost).

    Output streams as it comes; stdin is forwarded when it is not a terminal.

    With --selector or --group the command runs on every matching device, --parallel at a
    time and without stdin, and a table (or --json) shows each result. Offline devices are
    skipped. The exit code is 0 only when every device reached exited 0.
    """
    body: dict[str, Any] = {
        "unit": unit,
        "timeout": arguments.duration(timeout, "--timeout") if timeout else None,
    }
    if selector is not None or group is not None:
        target = {"selector": selector, "group": group}
        body["command"] = _command(args)
        finish(Ending(exec_fanout.run(target, body, parallel, json_output)))
        return
    device_id, *command = args
    body["command"] = _command(command)
    if json_output:
        finish(Ending(exec_fanout.run_devices([device_id], body, 1, as_json=True)))
        return
    finish(_exec_one(device_id, body))


def _command(argv: list[str]) -> list[str]:
    if not argv:
        raise CliError(
            "give the command after --, e.g. signalbeam exec pi-07 -- uptime "
            "(or signalbeam exec --selector env=prod -- uptime)"
        )
    return argv


def _stdin_fd() -> int | None:
    """Our stdin to forward, or None when it is a terminal (or closed): `eof` at once."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.fileno()


def _exec_one(device_id: str, body: dict[str, Any]) -> Ending:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stream = attach(device_id, "exec", body)
    except KeyboardInterrupt:
        return Ending(EXIT_INTERRUPTED)
    pump = InputPump(stream, _stdin_fd())
    pump.start()
    try:
        return relay(stream)
    except KeyboardInterrupt:
        return Ending(EXIT_INTERRUPTED, "interrupted; the device stops the command")
    finally:
        pump.stop()


def shell(device_id: DeviceArg, unit: UnitOpt = None) -> None:
    """Open an interactive terminal on a device; exit with the remote shell's exit status.

    Every key goes to the device, Ctrl-C and Ctrl-D included; the shell's own `exit` ends it.
    """
    if sys.stdin is None or not sys.stdin.isatty():
        raise CliError(NO_TERMINAL)
    fd = sys.stdin.fileno()
    rows, cols = terminal_size(fd)
    body: dict[str, Any] = {"command": [], "unit": unit, "tty": True, "rows": rows, "cols": cols}
    stream = attach(device_id, "exec", body)
    pump = InputPump(stream, fd, size=lambda: terminal_size(fd))
    with raw_mode(fd), resizes(pump):
        pump.start()
        try:
            ending = relay(stream)
        except KeyboardInterrupt:
            # Raw mode sends Ctrl-C as a byte; only a signal from elsewhere lands here.
            ending = Ending(EXIT_INTERRUPTED, "interrupted; the device stops the shell")
        finally:
            pump.stop()
    finish(ending)
