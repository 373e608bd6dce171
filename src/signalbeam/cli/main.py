"""The `signalbeam` command: the control plane and everything an operator does with it."""

from __future__ import annotations

import os
import sys

import typer

from signalbeam import __version__
from signalbeam.cli import (
    actions,
    alerts,
    artifacts,
    bundles,
    configs,
    devices,
    events,
    groups,
    keys,
    login,
    remote_access,
    rollouts,
    server,
    sessions,
    tokens,
    transfers,
    users,
    webhooks,
)
from signalbeam.cli.output import CliError
from signalbeam.domain.errors import DomainError
from signalbeam.sim import cli as sim

app = typer.Typer(
    name="signalbeam",
    help="SignalBeam: see what runs where on your devices, and update them safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(server.app, name="server")
app.command()(login.login)
app.command()(login.logout)
app.add_typer(tokens.app, name="tokens")
app.add_typer(devices.app, name="devices")
app.add_typer(groups.app, name="groups")
app.add_typer(bundles.app, name="bundles")
app.add_typer(keys.app, name="keys")
app.command()(bundles.assign)
app.command()(actions.cordon)
app.command()(actions.uncordon)
app.command()(actions.rollback)
app.command()(actions.drain)
app.command()(actions.restart)
app.command("restart-agent")(actions.restart_agent)
app.command()(actions.reboot)
app.command()(sessions.logs)
app.command("exec")(sessions.exec_)
app.command()(sessions.shell)
app.command()(transfers.cp)
app.command("port-forward")(transfers.port_forward)
app.add_typer(remote_access.app, name="remote-access")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(rollouts.app, name="rollouts")
app.add_typer(events.app, name="events")
app.add_typer(alerts.app, name="alerts")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(configs.app, name="config")
app.add_typer(users.app, name="users")
app.add_typer(users.api_tokens, name="api-tokens")
app.add_typer(sim.app, name="sim")


@app.command()
def version() -> None:
    """Print the SignalBeam version."""
    typer.echo(__version__)


def _error(message: str, code: int = 1) -> int:
    typer.echo(f"error: {message}", err=True)
    return code


def _usage(err: typer.TyperException) -> int:
    command = getattr(getattr(err, "ctx", None), "command_path", None)
    hint = f" (see: {command} --help)" if isinstance(command, str) else ""
    return _error(err.format_message() + hint, err.exit_code)


def run(args: list[str] | None = None) -> int:
    """Run one command and turn every failure into one `error:` line; return the exit code."""
    try:
        result = app(args=args, prog_name="signalbeam", standalone_mode=False)
    except typer.TyperException as err:
        # Typer's click raises NoArgsIsHelpError after printing the help: an answer, not a failure.
        if type(err).__name__ == "NoArgsIsHelpError":
            return 0
        return _usage(err)
    except typer.Abort:
        return _error("aborted")
    except CliError as err:
        return _error(err.message, err.code)
    except DomainError as err:
        return _error(err.detail)
    except Exception as err:
        if os.environ.get("SIGNALBEAM_DEBUG"):
            raise
        return _error(
            f"unexpected {type(err).__name__}: {err}; this is a bug in signalbeam, please report "
            "it (run again with SIGNALBEAM_DEBUG=1 to see the traceback)"
        )
    return result if isinstance(result, int) else 0


def main() -> None:
    """Entry point of the `signalbeam` console script."""
    sys.exit(run())
