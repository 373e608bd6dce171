"""The `signalbeam-agent` command: register, run, status, install-service."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from signalbeam import __version__
from signalbeam.agent import status as status_view
from signalbeam.agent.bundles import bundle_reconciler
from signalbeam.agent.client import Rejected, ServerUnavailable
from signalbeam.agent.config import AgentSettings, ConfigError, load
from signalbeam.agent.identity import IdentityError, ensure_state_dir, load_identity
from signalbeam.agent.loop import Agent

app = typer.Typer(
    name="signalbeam-agent",
    help="The SignalBeam agent: enrolls this device, reports its health, applies its desired state.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("signalbeam.agent")
EXIT_USAGE = 2

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where identity, outbox and agent.toml live (env SIGNALBEAM_AGENT_STATE_DIR; "
        "default /var/lib/signalbeam-agent for root, else ~/.local/state/signalbeam-agent)",
    ),
]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Control plane URL, e.g. http://10.0.0.5:8420 (env SIGNALBEAM_AGENT_SERVER)",
    ),
]
LogLevel = Annotated[
    str | None, typer.Option("--log-level", help="debug, info, warning or error (default: info)")
]
MdnsInterface = Annotated[
    list[str] | None,
    typer.Option(
        "--mdns-interface",
        help="Address of an interface to browse mDNS on (repeatable) (default: all)",
    ),
]


Token = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="SIGNALBEAM_AGENT_TOKEN",
        help="Enrollment token from `signalbeam tokens create`; prefer the environment "
        "variable, which keeps it out of the process list",
    ),
]
DeviceId = Annotated[
    str | None, typer.Option("--device-id", help="(default: derived from /etc/machine-id)")
]
Name = Annotated[str | None, typer.Option("--name", help="(default: the hostname)")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="key=value, repeatable")]
MdnsTimeout = Annotated[
    float, typer.Option("--mdns-timeout", help="Seconds to look for a server by mDNS")
]
MdnsName = Annotated[
    str | None,
    typer.Option(
        "--mdns-name", help="Pick the server advertised under this name when several answer"
    ),
]
Interval = Annotated[
    str | None,
    typer.Option(
        "--interval",
        help="Seconds between syncs until the server says otherwise (its hint wins) "
        "(env SIGNALBEAM_AGENT_INTERVAL; default 15s)",
    ),
]
OutboxMaxSamples = Annotated[
    int | None,
    typer.Option("--outbox-max-samples", help="Samples kept while offline (default 10000)"),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` to stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings(**flags: Any) -> AgentSettings:
    """Settings from flags, environment and agent.toml; a bad value is one clear error."""
    try:
        return load(flags)
    except ConfigError as err:
        fail(str(err), EXIT_USAGE)


def setup_logging(level: str) -> None:
    """One line per record on stderr (journald adds its own timestamps under systemd)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # httpx logs every request at INFO: noise on a device that syncs every few seconds.
    for noisy in ("httpx", "httpcore", "zeroconf"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@contextlib.contextmanager
def single_instance(state_dir: Path) -> Iterator[None]:
    """Hold a lock on the state dir so two agents never share one identity and outbox."""
    handle = (ensure_state_dir(state_dir) / "agent.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(f"another signalbeam-agent is already running with state dir {state_dir}")
        yield
    finally:
        handle.close()


@app.command("register")
def register_command(
    token: Token,
    server: Server = None,
    device_id: DeviceId = None,
    name: Name = None,
    label: Labels = None,
    mdns_interface: MdnsInterface = None,
    mdns_timeout: MdnsTimeout = 5.0,
    mdns_name: MdnsName = None,
    state_dir: StateDir = None,
    log_level: LogLevel = None,
) -> None:
    """Enroll this device and store its credential (mode 0600); finds the server by mDNS if no --server."""
    # Imported here so `run` never loads zeroconf: memory matters on a small device.
    from signalbeam.agent.discovery import DiscoveryError
    from signalbeam.agent.registration import Registration, RegistrationError, register

    config = settings(
        server=server, state_dir=state_dir, log_level=log_level, mdns_interface=mdns_interface
    )
    setup_logging(config.log_level)
    request = Registration(token, device_id, name, tuple(label or ()), mdns_timeout, mdns_name)
    try:
        done = asyncio.run(register(config, request))
    except (RegistrationError, DiscoveryError) as err:
        fail(str(err))
    except (ServerUnavailable, Rejected) as err:
        fail(f"enrollment failed: {err.detail}")
    except OSError as err:
        fail(f"cannot store the identity in {config.state_dir}: {err}")
    again = " (re-registered: the previous credential no longer works)" if done.rotated else ""
    typer.echo(
        f"Registered device {done.identity.device_id} with {done.identity.server}{again}.\n"
        f"Credential stored in {done.path} (mode 0600).\n"
        "Start the agent with `signalbeam-agent run`, or keep it running with "
        "`sudo signalbeam-agent install-service`."
    )


@app.command("run")
def run_command(
    server: Server = None,
    interval: Interval = None,
    outbox_max_samples: OutboxMaxSamples = None,
    state_dir: StateDir = None,
    log_level: LogLevel = None,
) -> None:
    """Sync with the server until stopped; exits 3 if the server refuses this device for good."""
    config = settings(
        server=server,
        interval=interval,
        outbox_max_samples=outbox_max_samples,
        state_dir=state_dir,
        log_level=log_level,
    )
    setup_logging(config.log_level)
    try:
        identity = load_identity(config.state_dir)
    except IdentityError as err:
        fail(str(err), EXIT_USAGE)
    try:
        with single_instance(config.state_dir):
            agent = Agent(config, identity, bundle_reconciler(config, identity))
            code = asyncio.run(agent.run())
    except (OSError, sqlite3.Error) as err:
        # Without a usable state dir nothing can be kept; exit and let systemd try again.
        fail(f"cannot use the state dir {config.state_dir}: {err}")
    raise typer.Exit(code)


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text")] = False,
    state_dir: StateDir = None,
) -> None:
    """Show what the agent knows: server, device, last sync, generations, queue, stop reason."""
    config = settings(state_dir=state_dir)
    info = status_view.gather(config.state_dir)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(status_view.render(info))
    if not info["registered"]:
        raise typer.Exit(1)


@app.command("install-service")
def install_service_command(
    print_only: Annotated[
        bool, typer.Option("--print", help="Only print the systemd unit; change nothing")
    ] = False,
    unit_dir: Annotated[Path, typer.Option("--unit-dir", help="Where to write the unit")] = Path(
        "/etc/systemd/system"
    ),
    state_dir: StateDir = None,
) -> None:
    """Install a systemd unit for `signalbeam-agent run`, then enable and start it."""
    from signalbeam.agent import service

    config = settings(state_dir=state_dir)
    text = service.unit_text(service.agent_command(), config.state_dir)
    if print_only:
        typer.echo(text, nl=False)
        return
    try:
        path = service.install(text, unit_dir)
    except service.ServiceError as err:
        fail(str(err))
    typer.echo(
        f"Installed {path} and started signalbeam-agent.\n"
        "Follow it with `journalctl -u signalbeam-agent -f`; check it with `signalbeam-agent status`."
    )


@app.command("version")
def version_command() -> None:
    """Print the agent version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the `signalbeam-agent` console script."""
    app(prog_name="signalbeam-agent")
