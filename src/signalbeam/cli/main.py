"""The `signalbeam` command: the control plane and everything an operator does with it."""

from __future__ import annotations

import typer

from signalbeam import __version__
from signalbeam.cli import server

app = typer.Typer(
    name="signalbeam",
    help="SignalBeam: see what runs where on your devices, and update them safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(server.app, name="server")


@app.command()
def version() -> None:
    """Print the SignalBeam version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the `signalbeam` console script."""
    app()
