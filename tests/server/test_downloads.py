"""An artifact download's record: bytes handed out, whether it ended early, the log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from signalbeam.server.artifacts.ranges import ByteRange
from signalbeam.server.services.device_cache import DevicePrincipal
from signalbeam.server.services.downloads import CUT, SENT, Download, tracked

DEVICE = DevicePrincipal(
    pk=7, tenant_id=1, device_id="pi-07", desired_generation=0, desired_spec={}
)
DIGEST = "ab" * 32


async def blob(chunks: int, size: int = 1000) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        yield b"x" * size


class Counted:
    def __init__(self) -> None:
        self.seen: list[tuple[Download, int, str]] = []
        self.done = asyncio.Event()

    async def __call__(self, download: Download, sent: int, outcome: str) -> None:
        self.seen.append((download, sent, outcome))
        self.done.set()


async def test_a_download_read_to_the_end_is_sent_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted = Counted()
    download = Download(DEVICE, DIGEST, ByteRange(1000, 4000, 4000))
    with caplog.at_level(logging.DEBUG, logger="signalbeam.server.services.downloads"):
        body = [chunk async for chunk in tracked(download, blob(3), counted)]
        await counted.done.wait()
    assert len(b"".join(body)) == 3000
    assert counted.seen == [(download, 3000, SENT)]
    assert caplog.messages == [
        f"artifact download device=pi-07 sha256={DIGEST} range=1000-3999/4000 resumed=true "
        "bytes_sent=3000 outcome=sent"
    ]


async def test_a_download_whose_reader_went_away_is_cut_after_what_it_took() -> None:
    counted = Counted()
    download = Download(DEVICE, DIGEST, ByteRange(0, 5000, 5000))
    body = tracked(download, blob(5), counted)
    taken = [await anext(body), await anext(body)]  # the connection drops while sending the 3rd
    await anext(body)
    await body.aclose()
    await counted.done.wait()
    assert len(taken) == 2 and not download.resumed
    assert counted.seen == [(download, 2000, CUT)]
