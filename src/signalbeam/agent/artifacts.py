"""Artifacts on the device: a content-addressed download cache, and safe unpacking.

Blobs are streamed to `<sha256>.partial` while being hashed, so memory stays bounded and a
cut download resumes with an HTTP Range request. Only a blob whose sha256 matches is moved
to `<sha256>`, so anything under that name has been verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import socket
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from signalbeam.agent.tls import tls_context
from signalbeam.agent.units import UnitError

log = logging.getLogger(__name__)
HASH_BLOCK_BYTES = 1 << 20
PARTIAL = ".partial"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class ControlPlane:
    """Where artifacts without a URL come from: the enrolled server, asked as this device."""

    server: str
    credential: str = field(repr=False)

    def url(self, sha256: str) -> str:
        """The device API download URL of blob `sha256`."""
        return f"{self.server.rstrip('/')}/api/device/v1/artifacts/{sha256}"

    def headers(self) -> dict[str, str]:
        """The device credential, as every device API request carries it."""
        return {"Authorization": f"Bearer {self.credential}"}


class ArtifactCache:
    """Blobs by sha256 under `root`: downloaded once, resumed after a cut, verified before use."""

    def __init__(self, root: Path, client: httpx.AsyncClient | None = None) -> None:
        self.root = root
        self._owns_client = client is None
        self._given = client
        self._locks: dict[str, asyncio.Lock] = {}

    def _http(self) -> httpx.AsyncClient:
        """The download client, made on first use: an agent with nothing to fetch needs none."""
        if self._given is None:
            self._given = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=10.0),
                follow_redirects=True,
                trust_env=False,
                verify=tls_context(),
            )
        return self._given

    def path(self, sha256: str) -> Path:
        """Where the verified blob `sha256` lives once fetched."""
        return self.root / sha256

    async def fetch(self, url: str, sha256: str, headers: dict[str, str] | None = None) -> Path:
        """The verified blob: from the cache at once, else downloaded (or resumed) from `url`."""
        if not _DIGEST.match(sha256):
            raise UnitError(f"artifact sha256 {sha256!r} is not 64 lower-case hex digits")
        async with self._locks.setdefault(sha256, asyncio.Lock()):
            final = self.path(sha256)
            if await asyncio.to_thread(_holds, final, sha256):
                return final
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
            await self._download(url, sha256, headers or {})
            return final

    async def gc(self, keep: set[str]) -> list[str]:
        """Delete blobs (and partial downloads) whose digest is not in `keep`; return those."""
        busy = {sha for sha, lock in self._locks.items() if lock.locked()}
        return await asyncio.to_thread(_remove_blobs, self.root, keep | busy)

    async def close(self) -> None:
        """Close the HTTP client if this cache made it."""
        if self._owns_client and self._given is not None:
            await self._given.aclose()

    async def _download(self, url: str, sha256: str, headers: dict[str, str]) -> None:
        partial = self.root / f"{sha256}{PARTIAL}"
        resumed = await asyncio.to_thread(_size, partial) > 0
        digest = await self._stream(url, partial, headers)
        if digest != sha256 and resumed:
            # The bytes kept from an earlier try may be the bad ones: one clean try more.
            log.warning("artifact %s: resumed download did not verify; starting over", sha256[:12])
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            digest = await self._stream(url, partial, headers)
        if digest != sha256:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            raise UnitError(
                f"artifact sha256 mismatch: expected {sha256[:12]}…, got {digest[:12]}…"
            )
        await asyncio.to_thread(_settle, partial, self.path(sha256))

    async def _stream(self, url: str, partial: Path, headers: dict[str, str]) -> str:
        """Download into `partial`, resuming what it holds; the sha256 of the whole file."""
        offset = await asyncio.to_thread(_size, partial)
        # Identity encoding: byte offsets and the digest refer to the blob as stored.
        wanted = {**headers, "Accept-Encoding": "identity"}
        if offset:
            wanted["Range"] = f"bytes={offset}-"
        try:
            async with self._http().stream("GET", url, headers=wanted) as response:
                append = _resumes(response, url, offset)
                if append is not None:
                    return await self._write(response, url, partial, offset if append else 0)
        except httpx.HTTPError as err:
            raise _unreachable(url, err) from err
        # The server answered our range with something else: start from nothing.
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        return await self._stream(url, partial, headers)

    async def _write(self, response: httpx.Response, url: str, partial: Path, offset: int) -> str:
        hasher = await asyncio.to_thread(_hash_file, partial) if offset else hashlib.sha256()
        received = offset
        try:
            with partial.open("ab" if offset else "wb") as out:
                # Chunks come as received (at most 64 KiB), so writing and hashing inline is
                # brief, and a cut keeps every byte that arrived.
                async for chunk in response.aiter_raw():
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
        except httpx.HTTPError as err:
            raise UnitError(
                f"artifact download failed: {shown_url(url)} interrupted after {received} bytes"
                f" ({_describe(err)}); the next try resumes from there",
                transient=True,
            ) from err
        except OSError as err:
            raise UnitError(
                f"artifact download failed: cannot write {partial}: {err.strerror or err}",
                transient=True,
            ) from err
        return hasher.hexdigest()


def _resumes(response: httpx.Response, url: str, offset: int) -> bool | None:
    """True: append to the partial file; False: write from the start; None: ask again."""
    status = response.status_code
    if status == 200:
        return False
    if status == 206 and offset:
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        return True if match and int(match.group(1)) == offset else None
    if status == 416 and offset:
        return None
    transient = status >= 500 or status in (408, 429)
    raise UnitError(
        f"artifact download failed: {shown_url(url)} returned {status}", transient=transient
    )


def _unreachable(url: str, err: httpx.HTTPError) -> UnitError:
    if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
        return UnitError(
            f"artifact download failed: {shown_url(url)} unreachable ({_describe(err)})",
            transient=True,
        )
    transient = isinstance(err, httpx.TransportError) and not isinstance(
        err, httpx.UnsupportedProtocol
    )
    return UnitError(
        f"artifact download failed: {shown_url(url)} ({_describe(err)})", transient=transient
    )


def _describe(err: BaseException) -> str:
    """The root cause in a few words: `connection refused`, `timed out`, ..."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, TimeoutError | httpx.TimeoutException):
            return "timed out"
        cause = cause.__cause__ or cause.__context__
    return str(err) or type(err).__name__


def shown_url(url: str) -> str:
    """`url` without credentials, query or fragment, which may carry secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _hash_file(path: Path) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with path.open("rb") as blob:
        while block := blob.read(HASH_BLOCK_BYTES):
            hasher.update(block)
    return hasher


def _holds(path: Path, sha256: str) -> bool:
    """True when `path` exists and hashes to `sha256`; a damaged copy is deleted."""
    if not path.is_file():
        return False
    if _hash_file(path).hexdigest() == sha256:
        return True
    log.warning("cached artifact %s was damaged on disk; downloading it again", sha256[:12])
    path.unlink(missing_ok=True)
    return False


def _settle(partial: Path, final: Path) -> None:
    """Flush the verified blob to disk and give it its final name atomically."""
    with partial.open("rb") as blob:
        os.fsync(blob.fileno())
    os.replace(partial, final)


def _remove_blobs(root: Path, keep: set[str]) -> list[str]:
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for entry in sorted(root.iterdir()):
        digest = entry.name.removesuffix(PARTIAL)
        if _DIGEST.match(digest) and digest not in keep:
            entry.unlink(missing_ok=True)
            removed.append(digest)
    return removed


def unpack(blob: Path, dest: Path, file_name: str) -> None:
    """Unpack a tar (any compression), a zip, or a single executable file into `dest`.

    The kind is read from the content, not from a name. `dest` appears complete or not at
    all. An archive member that would land outside `dest` is refused, naming the member.
    """
    staging = dest.with_name(f".{dest.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _unpack_into(blob, staging, file_name)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def artifact_kind(blob: Path) -> str:
    """`zip`, `tar` or `file`, from the first bytes of the blob."""
    with blob.open("rb") as head:
        magic = head.read(4)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return "tar" if tarfile.is_tarfile(blob) else "file"


def _unpack_into(blob: Path, staging: Path, file_name: str) -> None:
    kind = artifact_kind(blob)
    label = f"artifact {blob.name[:12]}…"
    try:
        if kind == "zip":
            _unzip(blob, staging, label)
        elif kind == "tar":
            _untar(blob, staging, label)
        else:
            target = staging / file_name
            shutil.copyfile(blob, target)
            target.chmod(0o755)
    except tarfile.FilterError as err:
        raise UnitError(f"{label} is unsafe to unpack: {err}") from err
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise UnitError(f"{label} is a damaged {kind} archive: {err}") from err


def _refuse_unsafe(name: str, label: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise UnitError(
            f'{label} is unsafe to unpack: member "{name}" would land outside the app '
            "directory (absolute paths and .. are refused)"
        )


def _untar(blob: Path, staging: Path, label: str) -> None:
    with tarfile.open(blob) as archive:
        for member in archive.getmembers():
            _refuse_unsafe(member.name, label)
        # The data filter also refuses links out of the directory, devices and set-uid bits.
        archive.extractall(staging, filter="data")


def _unzip(blob: Path, staging: Path, label: str) -> None:
    with zipfile.ZipFile(blob) as archive:
        members = archive.infolist()
        for info in members:
            _refuse_unsafe(info.filename, label)
        for info in members:
            target = Path(archive.extract(info, staging))
            mode = (info.external_attr >> 16) & 0o777
            # zipfile drops permissions; keep the executable bits the packer set.
            if mode and not info.is_dir():
                with contextlib.suppress(OSError):
                    target.chmod((mode & 0o755) | 0o600)
