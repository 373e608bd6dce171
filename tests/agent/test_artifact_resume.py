"""A real download from the control plane, cut mid-way by the network, resumes where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from signalbeam.agent.artifacts import ArtifactCache, ControlPlane
from signalbeam.agent.units import UnitError
from tests.conftest import LiveServer

SIZE = 4_000_000
CUT = 1_500_000
BLOCK = 1 << 16


@dataclass
class CuttingProxy:
    """A TCP proxy on loopback that hangs up the first connection after `cut` response bytes."""

    target: int
    cut: int
    heads: list[bytes] = field(default_factory=list)  # each connection's first request bytes
    sent: list[int] = field(default_factory=list)  # response bytes passed on, per connection
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    url: str = ""

    async def handle(self, client: asyncio.StreamReader, reply: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        upstream, forward = await asyncio.open_connection("127.0.0.1", self.target)
        index = len(self.sent)
        self.sent.append(0)
        self.heads.append(b"")
        limit = self.cut if index == 0 else None
        pump = asyncio.create_task(self._requests(client, forward, index))
        try:
            while data := await upstream.read(BLOCK):
                if limit is not None and self.sent[index] + len(data) > limit:
                    reply.write(data[: limit - self.sent[index]])
                    self.sent[index] = limit
                    await reply.drain()
                    break  # the cut: both sides just see the connection close
                reply.write(data)
                self.sent[index] += len(data)
                await reply.drain()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            for writer in (reply, forward):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _requests(
        self, client: asyncio.StreamReader, forward: asyncio.StreamWriter, index: int
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await client.read(BLOCK):
                if not self.heads[index]:
                    self.heads[index] = data
                forward.write(data)
                await forward.drain()


@pytest.fixture
async def proxy(live_server: LiveServer) -> AsyncIterator[CuttingProxy]:
    """A cutting proxy in front of the live server."""
    state = CuttingProxy(target=int(live_server.url.rsplit(":", 1)[1]), cut=CUT)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state
        # Handlers of kept-alive connections outlive the listener: end them with the test.
        for task in state.handlers:
            task.cancel()
        await asyncio.gather(*state.handlers, return_exceptions=True)


def enrolled_device(server: LiveServer) -> str:
    """A new device's credential, enrolled through the real API."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/api/v1/enrollment-tokens", json={}, headers=admin).json()["token"]
        facts = {"hostname": "pi", "os": "Debian 12", "arch": "aarch64", "agent_version": "0"}
        body = {"token": token, "device_id": "pi-resume", "facts": facts}
        credential: str = http.post("/api/device/v1/enroll", json=body).json()["credential"]
    return credential


def uploaded(server: LiveServer, content: bytes) -> str:
    """Upload `content` as an artifact; its sha256."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.put("/api/v1/artifacts/model.bin", content=content, headers=admin)
    assert response.status_code == 201, response.text
    digest: str = response.json()["sha256"]
    return digest


async def test_cut_download_from_the_control_plane_resumes(
    live_server: LiveServer, proxy: CuttingProxy, tmp_path: Path
) -> None:
    content = (hashlib.sha256(b"model").digest() * (SIZE // 32 + 1))[:SIZE]
    digest = uploaded(live_server, content)
    origin = ControlPlane(proxy.url, enrolled_device(live_server))
    cache = ArtifactCache(tmp_path / "cache")
    try:
        with pytest.raises(UnitError) as cut:
            await cache.fetch(origin.url(digest), digest, origin.headers())
        assert cut.value.transient and "interrupted after" in cut.value.reason
        kept = (cache.root / f"{digest}.partial").stat().st_size
        assert 0 < kept < CUT  # what arrived before the cut, minus the response head

        path = await cache.fetch(origin.url(digest), digest, origin.headers())
        assert path.read_bytes() == content
    finally:
        await cache.close()
    assert len(proxy.heads) == 2
    assert f"range: bytes={kept}-".encode() in proxy.heads[1].lower()
    # The second answer carried only the rest of the blob (and its head), not all of it again.
    assert SIZE - kept < proxy.sent[1] < SIZE - kept + 2000
    # ... and the server says so on the device, no packet sniffer needed.
    counters = await downloads_counted(live_server, "pi-resume", 2)
    assert (counters["requests"], counters["resumed"]) == (2, 1)
    assert counters["bytes_sent"] >= CUT + SIZE - kept


async def downloads_counted(server: LiveServer, device_id: str, requests: int) -> dict[str, int]:
    """The device's download counters once `requests` downloads are counted."""
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=admin, timeout=10) as http:
        for _ in range(200):
            device = (await http.get(f"/api/v1/devices/{device_id}")).json()
            if device["downloads"]["requests"] >= requests:
                counters: dict[str, int] = device["downloads"]
                return counters
            await asyncio.sleep(0.05)  # counted just after the answer ends: poll, bounded
    raise AssertionError(f"{device_id}'s downloads were not counted: {device['downloads']}")
