"""The `signalbeam-agent` command: register, run, status, install-service.

The command line is argparse rather than Typer (which the operator CLI uses): Typer checks
every parameter with pydantic, and loading pydantic costs a small device about 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from signalbeam import __version__
from signalbeam.agent import status as status_view
from signalbeam.agent.bundles import bundle_reconciler
from signalbeam.agent.client import Rejected, ServerUnavailable
from signalbeam.agent.config import AgentSettings, ConfigError, load, write_flag
from signalbeam.agent.identity import IdentityError, ensure_state_dir, load_identity
from signalbeam.agent.log_file import StateDirLog
from signalbeam.agent.loop import Agent
from signalbeam.agent.session_logs import AGENT_LOG

log = logging.getLogger("signalbeam.agent")
LOG_BYTES, LOG_BACKUPS = 1 << 20, 3
EXIT_USAGE = 2
TOKEN_ENV = "SIGNALBEAM_AGENT_TOKEN"  # noqa: S105 - the variable that holds it, not a token
Command = Callable[[argparse.Namespace], int]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` to stderr and exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


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


def keep_log(state_dir: Path) -> None:
    """Also write the log to STATE_DIR/agent.log (rotated), so operators can read it remotely."""
    handler = StateDirLog(state_dir / AGENT_LOG, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


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


def register_command(args: argparse.Namespace) -> int:
    """Enroll this device and store its credential (mode 0600); finds the server by mDNS if no --server."""
    # Imported here so `run` never loads zeroconf: memory matters on a small device.
    from signalbeam.agent.discovery import DiscoveryError
    from signalbeam.agent.registration import Registration, RegistrationError, register

    if not args.token:
        fail(f"give the enrollment token with --token or {TOKEN_ENV}", EXIT_USAGE)
    config = settings(
        server=args.server,
        state_dir=args.state_dir,
        log_level=args.log_level,
        mdns_interface=args.mdns_interface,
    )
    setup_logging(config.log_level)
    labels = tuple(args.label or ())
    request = Registration(
        args.token, args.device_id, args.name, labels, args.mdns_timeout, args.mdns_name
    )
    try:
        done = asyncio.run(register(config, request))
    except (RegistrationError, DiscoveryError) as err:
        fail(str(err))
    except (ServerUnavailable, Rejected) as err:
        fail(f"enrollment failed: {err.detail}")
    except OSError as err:
        fail(f"cannot store the identity in {config.state_dir}: {err}")
    again = " (re-registered: the previous credential no longer works)" if done.rotated else ""
    print(
        f"Registered device {done.identity.device_id} with {done.identity.server}{again}.\n"
        f"Credential stored in {done.path} (mode 0600).\n"
        "Start the agent with `signalbeam-agent run`, or keep it running with "
        "`sudo signalbeam-agent install-service`."
    )
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Sync with the server until stopped; exits 3 if the server refuses this device for good."""
    config = settings(
        server=args.server,
        interval=args.interval,
        outbox_max_samples=args.outbox_max_samples,
        state_dir=args.state_dir,
        log_level=args.log_level,
    )
    setup_logging(config.log_level)
    try:
        identity = load_identity(config.state_dir)
    except IdentityError as err:
        fail(str(err), EXIT_USAGE)
    try:
        with single_instance(config.state_dir):
            keep_log(config.state_dir)
            agent = Agent(config, identity, bundle_reconciler(config, identity))
            code = asyncio.run(agent.run())
    except (OSError, sqlite3.Error) as err:
        # Without a usable state dir nothing can be kept; exit and let systemd try again.
        fail(f"cannot use the state dir {config.state_dir}: {err}")
    if agent.restart_requested:
        run_again()
    return code


def run_again() -> NoReturn:
    """Replace this process with the same agent command line (the control plane asked).

    An exec, not a child: the pid stays, so systemd sees its service go on (no restart
    policy needed), and without systemd the agent comes back all the same. The state dir
    lock was released above; every file the agent opened closes on exec.
    """
    argv = [sys.executable, *sys.orig_argv[1:]]
    log.info("starting again: %s", " ".join(argv))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and argv
    except OSError as err:
        fail(f"cannot start the agent again ({err}); start it with `signalbeam-agent run`")


def status_command(args: argparse.Namespace) -> int:
    """Show what the agent knows: server, device, last sync, generations, queue, stop reason."""
    config = settings(state_dir=args.state_dir)
    info = status_view.gather(config.state_dir)
    print(json.dumps(info, indent=2) if args.json else status_view.render(info))
    return 0 if info["registered"] else 1


def install_service_command(args: argparse.Namespace) -> int:
    """Install a systemd unit for `signalbeam-agent run`, then enable and start it."""
    from signalbeam.agent import service

    config = settings(state_dir=args.state_dir)
    text = service.unit_text(service.agent_command(), config.state_dir)
    if args.print:
        print(text, end="")
        return 0
    if args.remote_access is not None:
        allow_remote_access(config, args.remote_access)
    try:
        path = service.install(text, args.unit_dir)
    except service.ServiceError as err:
        fail(str(err))
    print(
        f"Installed {path} and started signalbeam-agent.\n"
        "Follow it with `journalctl -u signalbeam-agent -f`; check it with `signalbeam-agent status`."
    )
    return 0


def allow_remote_access(config: AgentSettings, allowed: bool) -> None:
    """Write remote_access into agent.toml: the device owner's say on exec and shells."""
    try:
        write_flag(config.config_file, "remote_access", allowed)
    except (OSError, ConfigError) as err:
        fail(f"cannot set remote_access in {config.config_file}: {err}")
    state = "on" if allowed else "off"
    print(f"Remote access (exec, shell, copy, forward) is {state} in {config.config_file}.")


def version_command(args: argparse.Namespace) -> int:
    """Print the agent version."""
    print(__version__)
    return 0


class HelpFormatter(argparse.HelpFormatter):
    """argparse's layout, with `Usage:` capitalised like the operator CLI."""

    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


def _state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="Where identity, outbox and agent.toml live (env SIGNALBEAM_AGENT_STATE_DIR; "
        "default /var/lib/signalbeam-agent for root, else ~/.local/state/signalbeam-agent)",
    )


def _server_and_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        help="Control plane URL, e.g. http://10.0.0.5:8420 (env SIGNALBEAM_AGENT_SERVER)",
    )
    _state_dir(parser)
    parser.add_argument("--log-level", help="debug, info, warning or error (default: info)")


def _register_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"Enrollment token from `signalbeam tokens create`; prefer the environment variable "
        f"{TOKEN_ENV}, which keeps it out of the process list",
    )
    _server_and_logging(parser)
    parser.add_argument("--device-id", help="(default: derived from /etc/machine-id)")
    parser.add_argument("--name", help="(default: the hostname)")
    parser.add_argument("--label", action="append", help="key=value, repeatable")
    parser.add_argument(
        "--mdns-interface",
        action="append",
        help="Address of an interface to browse mDNS on (repeatable) (default: all)",
    )
    parser.add_argument(
        "--mdns-timeout", type=float, default=5.0, help="Seconds to look for a server by mDNS"
    )
    parser.add_argument(
        "--mdns-name", help="Pick the server advertised under this name when several answer"
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    _server_and_logging(parser)
    parser.add_argument(
        "--interval",
        help="Seconds between syncs until the server says otherwise (its hint wins) "
        "(env SIGNALBEAM_AGENT_INTERVAL; default 15s)",
    )
    parser.add_argument(
        "--outbox-max-samples", type=int, help="Samples kept while offline (default 10000)"
    )


def _status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print JSON instead of text")
    _state_dir(parser)


def _install_service_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print", action="store_true", help="Only print the systemd unit")
    parser.add_argument(
        "--unit-dir",
        type=Path,
        default=Path("/etc/systemd/system"),
        help="Where to write the unit (default: /etc/systemd/system)",
    )
    parser.add_argument(
        "--remote-access",
        action=argparse.BooleanOptionalAction,
        help="Allow (or refuse) operators' exec, shell, copy and forward sessions on this "
        "device: sets remote_access in agent.toml (default: leave it as it is, off if unset)",
    )
    _state_dir(parser)


COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None]]] = {
    "register": (register_command, _register_options),
    "run": (run_command, _run_options),
    "status": (status_command, _status_options),
    "install-service": (install_service_command, _install_service_options),
    "version": (version_command, lambda _parser: None),
}


def parser() -> argparse.ArgumentParser:
    """The whole command line: one sub-command per entry of `COMMANDS`."""
    top = argparse.ArgumentParser(
        prog="signalbeam-agent",
        description="The SignalBeam agent: enrolls this device, reports its health, "
        "applies its desired state.",
        formatter_class=HelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (command, options) in COMMANDS.items():
        summary = (command.__doc__ or "").splitlines()[0]
        sub = commands.add_parser(
            name, help=summary, description=summary, formatter_class=HelpFormatter
        )
        options(sub)
        sub.set_defaults(handler=command)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `signalbeam-agent` console script."""
    line = parser()
    args = line.parse_args(argv)
    if args.command is None:
        line.print_help()
        raise SystemExit(EXIT_USAGE)
    handler: Command = args.handler
    raise SystemExit(handler(args))
