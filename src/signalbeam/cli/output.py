"""How the CLI talks to people: one readable line per error, tables, JSON and relative times."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from signalbeam.domain.durations import coarse_duration

# Piped output (scripts, logs, tests) is not squeezed to 80 columns: whole values beat "…".
PIPE_WIDTH = 240

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON response instead of a table.")
]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

Cell = str | Text


class CliError(Exception):
    """A failure the CLI reports as one `error: ...` line and a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` to stderr and exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def console() -> Console:
    """A console on stdout: colours on a terminal, plain and wide when piped."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPE_WIDTH if piped else None)


def print_json(data: Any) -> None:
    """Print an API response as indented JSON."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], title: str | None = None
) -> Table:
    """A borderless table with bold headers, the way every list command shows rows."""
    grid = Table(title=title, box=None, header_style="bold", pad_edge=False, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    return grid


def details(pairs: Iterable[tuple[str, Cell]], title: str | None = None) -> Table:
    """A two-column name/value block for `show` commands."""
    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.title_justify = "left"
    grid.title_style = "bold"
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(name, value)
    return grid


def parse_time(value: str | None) -> datetime | None:
    """An API timestamp (ISO 8601) as an aware datetime."""
    return datetime.fromisoformat(value) if value else None


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
    """A time relative to now: `12s ago`, `3h ago`, `in 2d`, or `never`."""
    moment = parse_time(value) if isinstance(value, str) or value is None else value
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    amount = coarse_duration(abs(seconds))
    if amount == "0s":
        return "just now"
    return f"{amount} ago" if seconds > 0 else f"in {amount}"


def local_time(value: str | None) -> str:
    """An API timestamp in the local time zone, to the second, or `-`."""
    moment = parse_time(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def percent(value: Any) -> str:
    """A percentage without decimals, or `-` when the device did not report it."""
    return f"{value:.0f}%" if isinstance(value, int | float) else "-"


def labels_text(labels: Mapping[str, str]) -> str:
    """Labels as `k=v,k2=v2`, sorted by key, or `-`."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels)) or "-"


def page_footer(offset: int, shown: int, total: int) -> str:
    """Where a page sits in the whole list: `showing 1-50 of 230`."""
    if shown == 0:
        return f"showing 0 of {total}"
    return f"showing {offset + 1}-{offset + shown} of {total}"
