"""Artifact blobs as files under the data dir: `<root>/sha256/ab/abcdef...`.

An upload streams into `<root>/tmp/` while it is hashed, in blocks of at most a MiB, and gets
its content-addressed name by an atomic rename only once every byte is in and on disk. So a
file under `sha256/` is always complete, and a cut upload leaves at most a temp file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from signalbeam.domain.artifacts import is_sha256
from signalbeam.server.artifacts.store import (
    BlobMissing,
    BlobTooLarge,
    DigestMismatch,
    StoredBlob,
)

WRITE_BYTES = 1 << 20
READ_BYTES = 1 << 19
# An upload in progress writes at least every few seconds; a day-old temp file is a leftover.
STALE_TEMP_SECONDS = 86400


class FilesystemStore:
    """An `ArtifactStore` in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob `sha256` lives."""
        if not is_sha256(sha256):
            # Digests become paths; anything else could name a file outside the store.
            raise BlobMissing(f"{sha256[:80]!r} is not a sha256 digest")
        return self.root / "sha256" / sha256[:2] / sha256

    async def put(
        self, chunks: AsyncIterable[bytes], max_bytes: int, expected: str | None = None
    ) -> StoredBlob:
        """Stream into a temp file while hashing; rename it to its digest when complete."""
        handle, temp = await asyncio.to_thread(self._temp_file)
        hasher = hashlib.sha256()
        size = 0
        try:
            with handle:
                pending: list[bytes] = []
                buffered = 0
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    pending.append(chunk)
                    buffered += len(chunk)
                    if buffered >= WRITE_BYTES:
                        await asyncio.to_thread(_append, handle, hasher, b"".join(pending))
                        pending, buffered = [], 0
                await asyncio.to_thread(_append, handle, hasher, b"".join(pending), sync=True)
            stored = StoredBlob(hasher.hexdigest(), size)
            if expected is not None and stored.sha256 != expected:
                raise DigestMismatch(expected, stored.sha256)
            await asyncio.to_thread(self._settle, temp, stored.sha256)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return stored

    async def exists(self, sha256: str) -> bool:
        """True when the blob's file is there."""
        return await asyncio.to_thread(self.path(sha256).is_file)

    async def size(self, sha256: str) -> int:
        """The size of the blob's file as it is on disk now."""
        try:
            return (await asyncio.to_thread(self.path(sha256).stat)).st_size
        except FileNotFoundError as err:
            raise BlobMissing(sha256) from err

    async def open(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Read `[start, end)` in blocks of at most 512 KiB, each read off the event loop."""
        try:
            handle = await asyncio.to_thread(self.path(sha256).open, "rb")
        except FileNotFoundError as err:
            raise BlobMissing(sha256) from err
        try:
            await asyncio.to_thread(handle.seek, start)
            left = None if end is None else end - start
            while left is None or left > 0:
                want = READ_BYTES if left is None else min(READ_BYTES, left)
                block = await asyncio.to_thread(handle.read, want)
                if not block:
                    return
                if left is not None:
                    left -= len(block)
                yield block
        finally:
            handle.close()

    async def delete(self, sha256: str) -> None:
        """Remove the blob's file (and its directory when that empties)."""
        await asyncio.to_thread(self._remove, self.path(sha256))

    def _temp_file(self) -> tuple[BinaryIO, Path]:
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        _sweep(staging, time.time() - STALE_TEMP_SECONDS)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=staging)
        return os.fdopen(fd, "wb"), Path(name)

    def _settle(self, temp: Path, sha256: str) -> None:
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same digest, same bytes: replacing an existing blob is harmless and heals a damaged one.
        os.replace(temp, final)

    @staticmethod
    def _remove(path: Path) -> None:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def _sweep(staging: Path, before: float) -> None:
    """Remove temp files a crashed server left behind (none younger than a day is touched)."""
    for leftover in staging.iterdir():
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < before:
                leftover.unlink()


def _append(handle: BinaryIO, hasher: hashlib._Hash, data: bytes, *, sync: bool = False) -> None:
    handle.write(data)
    hasher.update(data)
    if sync:
        handle.flush()
        os.fsync(handle.fileno())
