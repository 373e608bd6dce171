"""Artifact throughput and memory: upload and download one large artifact through a real server.

Starts a throwaway `signalbeam server` (SQLite, loopback), streams a file of `--mb` MB to
`PUT /api/v1/artifacts/{name}` in 1 MiB blocks (as `signalbeam artifacts push` does), then
downloads it with the agent's own `ArtifactCache` from `GET /api/device/v1/artifacts/{sha256}`
as an enrolled device, verifying the digest. Reports MB/s both ways and the server's peak
RSS (the kernel's high-water mark, VmHWM, so no spike between samples is missed).
Usage: python -m bench.artifacts [--mb 500]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.harness import Server, run_server
from signalbeam.agent.artifacts import ArtifactCache, ControlPlane

BLOCK = 1 << 20
MB = 1_000_000


@dataclass
class ArtifactBench:
    """What moving one artifact each way cost."""

    size_mb: float
    upload_mb_per_s: float
    download_mb_per_s: float
    upload_seconds: float
    download_seconds: float
    server_rss_mb_idle: float
    server_rss_mb_peak: float
    client_rss_mb_peak: float
    python: str


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc status (not Linux?)")


def current_rss_mb(pid: int) -> float:
    """The process's resident set size now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS in /proc status (not Linux?)")


def make_file(path: Path, size: int) -> str:
    """Write `size` incompressible bytes in blocks; their sha256."""
    hasher = hashlib.sha256()
    seed = hashlib.sha256(b"bench").digest()
    with path.open("wb") as out:
        for index in range(0, size, BLOCK):
            # Cheap, varied bytes: a hash chain stretched over the block.
            seed = hashlib.sha256(seed + index.to_bytes(8, "big")).digest()
            block = (seed * (BLOCK // 32))[: min(BLOCK, size - index)]
            out.write(block)
            hasher.update(block)
    return hasher.hexdigest()


def blocks(path: Path) -> Iterator[bytes]:
    """The file in 1 MiB blocks, as the CLI streams it."""
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            yield block


def upload(server: Server, path: Path, digest: str) -> float:
    """Stream the file as artifact `bench.bin`; seconds taken."""
    headers = {
        "Authorization": f"Bearer {server.admin_token}",
        "Content-Length": str(path.stat().st_size),
        "X-Sha256": digest,
    }
    began = time.monotonic()
    response = httpx.put(
        f"{server.url}/api/v1/artifacts/bench.bin",
        content=blocks(path),
        headers=headers,
        timeout=httpx.Timeout(60.0, read=600.0),
    )
    response.raise_for_status()
    return time.monotonic() - began


def enroll(server: Server) -> str:
    """A device credential, enrolled through the real API."""
    facts = {"hostname": "bench", "os": "Debian 12", "arch": "x86_64", "agent_version": "0"}
    body = {"token": server.enrollment_token(), "device_id": "bench-1", "facts": facts}
    response = httpx.post(f"{server.url}/api/device/v1/enroll", json=body, timeout=30)
    response.raise_for_status()
    credential: str = response.json()["credential"]
    return credential


async def download(server: Server, digest: str, cache_dir: Path) -> float:
    """Fetch the blob with the agent's cache as the device; seconds taken."""
    origin = ControlPlane(server.url, enroll(server))
    cache = ArtifactCache(cache_dir)
    try:
        began = time.monotonic()
        await cache.fetch(origin.url(digest), digest, origin.headers())
        return time.monotonic() - began
    finally:
        await cache.close()


def run(size_mb: int) -> ArtifactBench:
    """Start a server, move the artifact up and down, stop the server."""
    size = size_mb * MB
    with tempfile.TemporaryDirectory(prefix="sb-artifacts-") as tmp:
        work = Path(tmp)
        digest = make_file(work / "bench.bin", size)
        with run_server(work, None, []) as server:
            pid = server.process.pid
            idle = current_rss_mb(pid)
            up = upload(server, work / "bench.bin", digest)
            down = asyncio.run(download(server, digest, work / "cache"))
            peak = peak_rss_mb(pid)
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ArtifactBench(
        size_mb=size / MB,
        upload_mb_per_s=round(size / MB / up, 1),
        download_mb_per_s=round(size / MB / down, 1),
        upload_seconds=round(up, 2),
        download_seconds=round(down, 2),
        server_rss_mb_idle=idle,
        server_rss_mb_peak=peak,
        client_rss_mb_peak=round(client_peak, 1),
        python=sys.version.split()[0],
    )


def table(result: ArtifactBench) -> str:
    """The short human summary."""
    rows = [
        ("artifact", f"{result.size_mb:g} MB"),
        ("upload", f"{result.upload_mb_per_s} MB/s ({result.upload_seconds} s)"),
        ("download", f"{result.download_mb_per_s} MB/s ({result.download_seconds} s)"),
        ("server RSS", f"{result.server_rss_mb_idle} MB idle, {result.server_rss_mb_peak} MB peak"),
        ("client RSS peak", f"{result.client_rss_mb_peak} MB (uploader and agent cache)"),
    ]
    return "\n".join(f"{label:<16} {value}" for label, value in rows)


def main() -> None:
    """Parse the arguments, run the benchmark, print JSON then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=500, help="artifact size in MB (10^6 bytes)")
    args = parser.parse_args()
    result = run(args.mb)
    print(json.dumps(asdict(result), indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
