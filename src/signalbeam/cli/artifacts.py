"""`signalbeam artifacts`: upload blobs to the control plane, list them, remove unused ones."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from signalbeam.cli.client import connect
from signalbeam.cli.output import CliError, JsonFlag, ago, console, print_json, table
from signalbeam.domain.artifacts import check_name
from signalbeam.domain.errors import DomainError

app = typer.Typer(
    help="Artifacts: binaries, tarballs and models that bundles take from the control plane.",
    no_args_is_help=True,
)
COLUMNS = ["NAME", "SHA256", "SIZE", "BUNDLE VERSIONS", "UPLOADED", "BY"]
BLOCK_BYTES = 1 << 20


def human_size(size: int) -> str:
    """`1.5 MB`: sizes as people read them (powers of 1000, like the progress bar)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _open(file: Path) -> tuple[BinaryIO, int]:
    try:
        handle = file.open("rb")
    except FileNotFoundError as err:
        raise CliError(f"{file}: no such file") from err
    except OSError as err:
        raise CliError(f"{file}: cannot read it ({err.strerror or err})") from err
    return handle, file.stat().st_size


def _blocks(handle: BinaryIO, progress: Progress, task: Any) -> Iterator[bytes]:
    while block := handle.read(BLOCK_BYTES):
        progress.advance(task, len(block))
        yield block


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _digest(handle: BinaryIO, size: int, progress: Progress) -> str:
    """The file's sha256, so the server can refuse bytes that change on the way."""
    hasher = hashlib.sha256()
    for block in _blocks(handle, progress, progress.add_task("hashing", total=size)):
        hasher.update(block)
    handle.seek(0)
    return hasher.hexdigest()


def _name(file: Path, name: str | None) -> str:
    if name is not None:
        return check_name(name, field="--name")
    try:
        return check_name(file.name, field="the file name")
    except DomainError as err:
        raise CliError(f"{err.detail}; give it a name with --name") from err


@app.command()
def push(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The file to upload.")],
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="Name it this (default: the file name)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Upload FILE (streamed, with a progress bar); prints its name and sha256."""
    artifact = _name(file, name)
    handle, size = _open(file)
    with handle, _progress() as progress, connect() as api:
        digest = _digest(handle, size, progress)
        task = progress.add_task(f"uploading {artifact}", total=size)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "X-Sha256": digest,
        }
        path = f"/api/v1/artifacts/{quote(artifact, safe='')}"
        uploaded: dict[str, Any] = api.upload(path, _blocks(handle, progress, task), headers)
    if json_output:
        print_json(uploaded)
        return
    verb = "uploaded" if uploaded["created"] else "already uploaded"
    typer.echo(f"{verb} {uploaded['name']} ({human_size(uploaded['size'])})")
    typer.echo(f"sha256 {uploaded['sha256']}")


@app.command("ls")
def list_artifacts(json_output: JsonFlag = False) -> None:
    """List uploads: name, digest, size, and how many bundle versions use each."""
    with connect() as api:
        artifacts: list[dict[str, Any]] = api.get("/api/v1/artifacts")
    if json_output:
        print_json(artifacts)
        return
    if not artifacts:
        typer.echo("No artifacts yet; upload one with: signalbeam artifacts push FILE")
        return
    rows = [
        [
            a["name"],
            a["sha256"][:12] + "…",
            human_size(a["size"]),
            str(a["bundle_versions"]),
            ago(a["created_at"]),
            a["created_by"],
        ]
        for a in artifacts
    ]
    console().print(table(COLUMNS, rows))


@app.command("rm")
def remove(
    ref: Annotated[
        str, typer.Argument(metavar="NAME|SHA256", help="Every upload of this name, or digest.")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Remove an artifact; refused while a bundle version uses it."""
    with connect() as api:
        removed: dict[str, Any] = api.delete(f"/api/v1/artifacts/{quote(ref, safe='')}")
    if json_output:
        print_json(removed)
        return
    for artifact in removed["removed"]:
        typer.echo(f"removed {artifact['name']} (sha256 {artifact['sha256'][:12]}…)")
