"""`signalbeam cp` and `port-forward`: files to and from a device, and a device's TCP port here.

A copy is checked end to end by sha256: the device renames a put into place only when it
matches, and a get is kept only when what arrived matches what the device read. Neither
leaves a partial file under the target's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Annotated

import typer

from signalbeam.cli.output import CliError
from signalbeam.cli.session_stream import SessionStream
from signalbeam.cli.sessions import attach, finish
from signalbeam.protocol.sessions import STDOUT

CHUNK = 60 * 1024


def split_remote(text: str) -> tuple[str, str] | None:
    """(device, path) for `DEVICE:/path`, None for a local path."""
    device, sep, path = text.partition(":")
    if not sep or not device or "/" in device or not path.startswith("/"):
        return None
    return device, path


def cp(
    source: Annotated[str, typer.Argument(help="LOCAL or DEVICE:/PATH")],
    target: Annotated[str, typer.Argument(help="DEVICE:/PATH or LOCAL")],
) -> None:
    """Copy a file to or from a device, checked by sha256."""
    remote_source, remote_target = split_remote(source), split_remote(target)
    if (remote_source is None) == (remote_target is None):
        raise CliError("give one local path and one DEVICE:/absolute/path, e.g. pi-07:/etc/x.conf")
    if remote_target is not None:
        _put(Path(source), *remote_target)
    elif remote_source is not None:
        _get(*remote_source, Path(target))


def _put(local: Path, device_id: str, path: str) -> None:
    digest, size = _digest(local)
    body = {"path": path, "direction": "put", "size": size, "sha256": digest}
    stream = attach(device_id, "copy", body)
    try:
        with local.open("rb") as file:
            while data := file.read(CHUNK):
                stream.send_stdin(data)
        stream.send_eof()
        ending = stream.read(lambda _stream, _data: None)
    finally:
        stream.close()
    finish(ending)
    typer.echo(f"copied {size} bytes to {device_id}:{path} (sha256 {digest[:12]}…)")


def _digest(local: Path) -> tuple[str, int]:
    try:
        with local.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256")
    except OSError as err:
        raise CliError(f"cannot read {local}: {err.strerror}") from err
    return digest.hexdigest(), local.stat().st_size


def _get(device_id: str, path: str, local: Path) -> None:
    if local.is_dir():
        local = local / Path(path).name
    partial = local.with_name(f".{local.name}.signalbeam-partial")
    digest, size = hashlib.sha256(), 0
    stream = attach(device_id, "copy", {"path": path, "direction": "get"})
    try:
        with partial.open("wb") as file:

            def write(kind: int, data: bytes) -> None:
                nonlocal size
                if kind == STDOUT:
                    file.write(data)
                    digest.update(data)
                    size += len(data)

            ending = stream.read(write)
        _keep(stream, partial, local, digest.hexdigest())
    finally:
        stream.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    finish(ending)
    typer.echo(
        f"copied {size} bytes from {device_id}:{path} to {local} (sha256 {digest.hexdigest()[:12]}…)"
    )


def _keep(stream: SessionStream, partial: Path, local: Path, digest: str) -> None:
    if stream.final.get("type") != "exit":
        return  # the error is printed by finish(); nothing is kept
    if stream.final.get("sha256") != digest:
        raise CliError(
            f"the copy arrived damaged (sha256 {digest}, the device read {stream.final.get('sha256')}); nothing was written"
        )
    os.replace(partial, local)


def port_forward(
    device_id: Annotated[str, typer.Argument(metavar="DEVICE", help="The device's id.")],
    mapping: Annotated[
        str, typer.Argument(metavar="LOCAL:[HOST:]PORT", help="e.g. 8080:127.0.0.1:80")
    ],
) -> None:
    """Make a TCP port the device can reach usable on this machine (loopback only)."""
    local, host, port = parse_mapping(mapping)
    listener = socket.create_server(("127.0.0.1", local))
    typer.echo(
        f"forwarding 127.0.0.1:{listener.getsockname()[1]} -> {host}:{port} on {device_id} (Ctrl-C to stop)"
    )
    with listener:
        try:
            while True:
                connection, _ = listener.accept()
                threading.Thread(
                    target=_carry, args=(connection, device_id, host, port), daemon=True
                ).start()
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def parse_mapping(text: str) -> tuple[int, str, int]:
    """`8080:80` or `8080:127.0.0.1:80` as (local port, host, remote port)."""
    parts = text.split(":")
    if len(parts) == 2:
        parts.insert(1, "127.0.0.1")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit() or not parts[1]:
        raise CliError(f"{text!r}: write LOCAL:PORT or LOCAL:HOST:PORT, e.g. 8080:127.0.0.1:80")
    local, remote = int(parts[0]), int(parts[2])
    if not (0 <= local <= 65535 and 1 <= remote <= 65535):
        raise CliError(f"{text!r}: ports go from 1 to 65535 (0 picks a free local port)")
    return local, parts[1], remote


def _carry(connection: socket.socket, device_id: str, host: str, port: int) -> None:
    with connection:
        try:
            stream = attach(device_id, "forward", {"host": host, "port": port})
        except CliError as err:
            typer.echo(f"error: {err}", err=True)
            return
        threading.Thread(target=_upload, args=(connection, stream), daemon=True).start()
        try:
            stream.read(lambda _kind, data: connection.sendall(data))
        except OSError:
            pass
        finally:
            stream.close()


def _upload(connection: socket.socket, stream: SessionStream) -> None:
    with contextlib.suppress(Exception):
        while data := connection.recv(CHUNK):
            stream.send_stdin(data)
        stream.send_eof()
