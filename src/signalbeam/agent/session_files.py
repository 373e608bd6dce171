"""Copy and forward sessions: a file into or out of the device, one TCP connection through it.

A put is written beside its target under a temporary name and renamed into place only once
its size and sha256 match what the operator announced, so a cut copy never leaves a partial
file under the target's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from signalbeam.agent.session_channel import Channel, SessionRefused
from signalbeam.protocol.sessions import GET, PUT, STDOUT

READ_BYTES = 64 * 1024
CONNECT_SECONDS = 10.0


async def copy_file(channel: Channel, opened: dict[str, Any]) -> int | None:
    """Put or get the file the session names."""
    path = Path(str(opened.get("path") or ""))
    if not path.is_absolute():
        raise SessionRefused(f"copy needs an absolute path on the device, not {str(path)!r}")
    if opened.get("direction") == GET:
        return await _get(channel, path)
    if opened.get("direction") == PUT:
        return await _put(channel, path, int(opened.get("size") or 0), str(opened.get("sha256")))
    raise SessionRefused("copy direction must be put or get")


async def _get(channel: Channel, path: Path) -> int | None:
    digest, size = hashlib.sha256(), 0
    try:
        file = await asyncio.to_thread(path.open, "rb")
    except OSError as err:
        raise SessionRefused(f"cannot read {path}: {err.strerror}") from err
    try:
        while data := await asyncio.to_thread(file.read, READ_BYTES):
            digest.update(data)
            size += len(data)
            await channel.send(STDOUT, data)
    finally:
        file.close()
    await channel.exit(0, sha256=digest.hexdigest(), size=size)
    return None


async def _put(channel: Channel, path: Path, size: int, sha256: str) -> int | None:
    partial = path.with_name(f".{path.name}.signalbeam-partial")
    try:
        file = await asyncio.to_thread(partial.open, "wb")
    except OSError as err:
        raise SessionRefused(f"cannot write {path.parent}: {err.strerror}") from err
    digest, got = hashlib.sha256(), 0
    try:
        async for item in channel.inputs():
            if item.kind == "stdin":
                digest.update(item.data)
                got += len(item.data)
                await asyncio.to_thread(file.write, item.data)
            elif item.kind == "eof":
                break
        file.close()
        _check(path, got, size, digest.hexdigest(), sha256)
        await asyncio.to_thread(os.replace, partial, path)
    finally:
        file.close()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(partial.unlink)
    await channel.exit(0, sha256=sha256, size=got)
    return None


def _check(path: Path, got: int, size: int, digest: str, sha256: str) -> None:
    if got != size:
        raise SessionRefused(f"{path}: got {got} of {size} bytes; nothing was written")
    if digest != sha256:
        raise SessionRefused(
            f"{path}: sha256 {digest} is not the {sha256} announced; nothing was written"
        )


async def forward_port(channel: Channel, host: str, port: int) -> int | None:
    """Connect to host:port from the device and relay the connection's bytes both ways."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_SECONDS
        )
    except (OSError, TimeoutError) as err:
        raise SessionRefused(f"cannot connect to {host}:{port} from the device: {err}") from err
    sending = asyncio.create_task(_to_port(channel, writer))
    try:
        while data := await reader.read(READ_BYTES):
            await channel.send(STDOUT, data)
    finally:
        sending.cancel()
        writer.close()
    return 0


async def _to_port(channel: Channel, writer: asyncio.StreamWriter) -> None:
    async for item in channel.inputs():
        if item.kind == "stdin":
            writer.write(item.data)
            await writer.drain()
        elif item.kind == "eof":
            writer.write_eof()
    writer.close()
