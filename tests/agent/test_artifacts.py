"""The artifact cache against a real HTTP server on loopback: verify, resume, refuse, collect."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from signalbeam.agent.artifacts import ArtifactCache
from signalbeam.agent.units import UnitError
from tests.components import free_port


@dataclass(frozen=True)
class Seen:
    """One request the server answered."""

    path: str
    range: str | None
    authorization: str | None


@dataclass
class ArtifactServer:
    """Blobs served over real HTTP on 127.0.0.1, with Range support, recording every request."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # next answer stops after N bytes
    ignore_range: set[str] = field(default_factory=set)
    url: str = ""

    def add(self, path: str, data: bytes) -> str:
        """Serve `data` at `path`; return its URL."""
        self.blobs[path] = data
        return f"{self.url}{path}"

    def requests(self, path: str) -> list[str | None]:
        """The Range header of every request for `path`, in order (None: no range)."""
        return [seen.range for seen in self.seen if seen.path == path]


def _handler(state: ArtifactServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(
                Seen(self.path, self.headers.get("Range"), self.headers.get("Authorization"))
            )
            data = state.blobs.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = self._range_start(len(data))
            if start is None:
                return
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = state.cut_after.pop(self.path, None)
            # A cut: promise the whole body, send part of it, hang up.
            self.wfile.write(body if cut is None else body[:cut])

        def _range_start(self, size: int) -> int | None:
            wanted = self.headers.get("Range")
            if not wanted or self.path in state.ignore_range:
                return 0
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= size:
                self.send_error(416)
                return None
            return start

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def artifact_server() -> Iterator[ArtifactServer]:
    """A live artifact server on a free loopback port."""
    state = ArtifactServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[ArtifactCache]:
    """A cache in a fresh directory with its own HTTP client."""
    artifacts = ArtifactCache(tmp_path / "cache")
    yield artifacts
    await artifacts.close()


def blob(size: int, seed: int = 0) -> tuple[bytes, str]:
    """`size` pseudo-random bytes and their sha256."""
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    return data, hashlib.sha256(data).hexdigest()


async def test_downloads_verifies_and_caches(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, sha = blob(300_000)
    url = artifact_server.add("/x.tar.gz", data)
    path = await cache.fetch(url, sha, headers={"Authorization": "Bearer device-secret"})
    assert path == cache.root / sha
    assert path.read_bytes() == data
    assert [p.name for p in cache.root.iterdir()] == [sha]  # no partial left behind
    assert artifact_server.seen[0].authorization == "Bearer device-secret"


async def test_cache_hit_makes_no_request(
    artifact_server: ArtifactServer, cache: ArtifactCache, tmp_path: Path
) -> None:
    data, sha = blob(10_000)
    url = artifact_server.add("/a", data)
    await cache.fetch(url, sha)
    again = ArtifactCache(tmp_path / "cache")  # an agent restart: same directory, new cache
    try:
        assert (await again.fetch(url, sha)).read_bytes() == data
        assert (await cache.fetch(url, sha)).read_bytes() == data
    finally:
        await again.close()
    assert artifact_server.requests("/a") == [None]


async def test_damaged_cached_blob_is_fetched_again(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, sha = blob(10_000)
    url = artifact_server.add("/a", data)
    await cache.fetch(url, sha)
    (cache.root / sha).write_bytes(b"bit rot")
    assert (await cache.fetch(url, sha)).read_bytes() == data
    assert len(artifact_server.requests("/a")) == 2


async def test_digest_mismatch_is_refused_and_removed(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, actual = blob(5_000)
    _, expected = blob(5_000, seed=1)
    url = artifact_server.add("/x", data)
    with pytest.raises(UnitError) as caught:
        await cache.fetch(url, expected)
    assert caught.value.reason == (
        f"artifact sha256 mismatch: expected {expected[:12]}…, got {actual[:12]}…"
    )
    assert not caught.value.transient
    assert list(cache.root.iterdir()) == []


async def test_not_found_is_permanent(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    url = f"{artifact_server.url}/missing.tar.gz"
    with pytest.raises(UnitError) as caught:
        await cache.fetch(url, blob(1)[1])
    assert caught.value.reason == f"artifact download failed: {url} returned 404"
    assert not caught.value.transient


async def test_connection_refused_is_transient_and_hides_query_secrets(
    cache: ArtifactCache,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/x.tar.gz"
    with pytest.raises(UnitError) as caught:
        await cache.fetch(f"{url}?token=s3cret", blob(1)[1])
    assert (
        caught.value.reason == f"artifact download failed: {url} unreachable (connection refused)"
    )
    assert caught.value.transient


async def test_cut_download_resumes_where_it_stopped(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, sha = blob(1_000_000)
    url = artifact_server.add("/big", data)
    artifact_server.cut_after["/big"] = 400_000
    with pytest.raises(UnitError) as caught:
        await cache.fetch(url, sha)
    assert caught.value.transient
    assert "interrupted after" in caught.value.reason
    on_disk = (cache.root / f"{sha}.partial").stat().st_size
    assert on_disk == 400_000
    assert (await cache.fetch(url, sha)).read_bytes() == data
    assert artifact_server.requests("/big") == [None, f"bytes={on_disk}-"]


async def test_server_ignoring_range_starts_over(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, sha = blob(200_000)
    url = artifact_server.add("/big", data)
    artifact_server.cut_after["/big"] = 50_000
    artifact_server.ignore_range.add("/big")
    with pytest.raises(UnitError):
        await cache.fetch(url, sha)
    assert (await cache.fetch(url, sha)).read_bytes() == data
    ranges = artifact_server.requests("/big")
    assert ranges[0] is None and ranges[1] is not None and len(ranges) == 2


async def test_bad_partial_file_gets_one_clean_retry(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    data, sha = blob(100_000)
    url = artifact_server.add("/a", data)
    cache.root.mkdir(parents=True)
    (cache.root / f"{sha}.partial").write_bytes(os.urandom(1000))
    assert (await cache.fetch(url, sha)).read_bytes() == data
    assert artifact_server.requests("/a") == ["bytes=1000-", None]


async def test_gc_keeps_only_what_is_asked(
    artifact_server: ArtifactServer, cache: ArtifactCache
) -> None:
    shas = []
    for seed in range(3):
        data, sha = blob(1000, seed)
        await cache.fetch(artifact_server.add(f"/{seed}", data), sha)
        shas.append(sha)
    (cache.root / f"{blob(7, 9)[1]}.partial").write_bytes(b"partial")
    removed = await cache.gc({shas[1]})
    assert sorted(removed) == sorted([shas[0], shas[2], blob(7, 9)[1]])
    assert [p.name for p in cache.root.iterdir()] == [shas[1]]
