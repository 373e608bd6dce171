"""The filesystem artifact store and Range parsing, on a real directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signalbeam.server.artifacts.filesystem import FilesystemStore
from signalbeam.server.artifacts.ranges import ByteRange, RangeNotSatisfiable, parse_range
from signalbeam.server.artifacts.store import (
    ArtifactStore,
    BlobMissing,
    BlobTooLarge,
    DigestMismatch,
)

CONTENT = bytes(range(256)) * 20_000  # 5 MB: several write blocks


async def chunks(
    data: bytes, size: int = 65536, fail_at: int | None = None
) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if fail_at is not None and start >= fail_at:
            raise ConnectionResetError("client went away")
        yield data[start : start + size]


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "artifacts")


async def test_put_names_the_blob_by_its_digest(store: FilesystemStore) -> None:
    typed: ArtifactStore = store  # the filesystem store implements the interface
    stored = await typed.put(chunks(CONTENT), max_bytes=len(CONTENT))
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert (stored.sha256, stored.size) == (digest, len(CONTENT))
    assert leftovers(store.root) == [store.root / "sha256" / digest[:2] / digest]
    assert await typed.exists(digest) and await typed.size(digest) == len(CONTENT)
    assert b"".join([b async for b in typed.open(digest)]) == CONTENT
    assert b"".join([b async for b in typed.open(digest, 1000, 700_000)]) == CONTENT[1000:700_000]
    await typed.delete(digest)
    assert not await typed.exists(digest)
    with pytest.raises(BlobMissing):
        await typed.size(digest)


async def test_too_large_upload_leaves_nothing(store: FilesystemStore) -> None:
    with pytest.raises(BlobTooLarge):
        await store.put(chunks(CONTENT), max_bytes=len(CONTENT) - 1)
    assert leftovers(store.root) == []


async def test_cut_upload_leaves_nothing(store: FilesystemStore) -> None:
    with pytest.raises(ConnectionResetError):
        await store.put(chunks(CONTENT, fail_at=2_000_000), max_bytes=10**9)
    assert leftovers(store.root) == []


async def test_leftovers_of_a_crash_are_swept_by_the_next_upload(store: FilesystemStore) -> None:
    staging = store.root / "tmp"
    staging.mkdir(parents=True)
    (staging / "upload-old").write_bytes(b"half an upload")
    os.utime(staging / "upload-old", (0, 0))
    (staging / "upload-running").write_bytes(b"someone else's upload in progress")
    await store.put(chunks(b"new"), max_bytes=100)
    assert sorted(p.name for p in staging.iterdir()) == ["upload-running"]


async def test_wrong_expected_digest_leaves_nothing(store: FilesystemStore) -> None:
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(DigestMismatch) as caught:
        await store.put(chunks(CONTENT), max_bytes=len(CONTENT), expected=wrong)
    assert caught.value.actual == hashlib.sha256(CONTENT).hexdigest()
    assert leftovers(store.root) == []


async def test_paths_only_come_from_digests(store: FilesystemStore) -> None:
    with pytest.raises(BlobMissing):
        await store.size("../../etc/passwd")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 100, 100)),
        ("bytes=90-", ByteRange(90, 100, 100)),
        ("bytes=10-19", ByteRange(10, 20, 100)),
        ("bytes=10-1000", ByteRange(10, 100, 100)),
        ("bytes=-5", ByteRange(95, 100, 100)),
        ("bytes=-500", ByteRange(0, 100, 100)),
    ],
)
def test_ranges(header: str, expected: ByteRange) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=20-10", "bytes=-0", "bytes=-", "items=1-2", "bytes=0-1,5-6"]
)
def test_bad_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_content_range() -> None:
    assert parse_range("bytes=90-", 100).content_range == "bytes 90-99/100"
