"""The interface every artifact store implements: the filesystem today, S3-compatible later."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredBlob:
    """What a `put` stored: the digest it computed while streaming, and the size."""

    sha256: str
    size: int


class BlobTooLarge(Exception):
    """The stream passed the size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class DigestMismatch(Exception):
    """The stream's sha256 is not the one the uploader said it would be; nothing was stored."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class BlobMissing(Exception):
    """No blob with this digest is stored (never uploaded, or removed from disk)."""


class ArtifactStore(Protocol):
    """Blobs by sha256. Implementations never hold a whole blob in memory."""

    async def put(
        self, chunks: AsyncIterable[bytes], max_bytes: int, expected: str | None = None
    ) -> StoredBlob:
        """Store a stream, naming it by the sha256 of its bytes once they are all in.

        Raises `BlobTooLarge` past `max_bytes` and `DigestMismatch` when `expected` is given
        and differs; a failed, refused or cut stream leaves nothing behind.
        """
        ...

    async def exists(self, sha256: str) -> bool:
        """True when the blob is stored."""
        ...

    async def size(self, sha256: str) -> int:
        """The stored blob's size in bytes; raises `BlobMissing`."""
        ...

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from `start` up to, not including, `end` (the whole rest for None)."""
        ...

    async def delete(self, sha256: str) -> None:
        """Remove the blob; a missing one is fine."""
        ...
