"""Artifact downloads as the server saw them: a debug log line each, and counters on the device.

The server knows only what it handed to the network. A download cut after its last bytes left
for the kernel's buffers (or a proxy's) looks sent from here; the device then asks for the
rest with a Range, and that request counts as resumed. So `resumed` is what proves a resume
happened, and `cut` counts the cuts the server itself saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from signalbeam.server.artifacts.ranges import ByteRange
from signalbeam.server.repositories.devices import DeviceRepository
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.device_cache import DevicePrincipal

log = logging.getLogger(__name__)

SENT = "sent"
CUT = "cut"

# Counter writes run beside the response (a cut response's task is being cancelled); kept
# here so they are not collected half-way.
_writes: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Download:
    """One artifact request of one device: which bytes of which blob it asked for."""

    device: DevicePrincipal
    sha256: str
    span: ByteRange

    @property
    def resumed(self) -> bool:
        """A request for the rest of a blob, after an earlier one stopped short."""
        return self.span.start > 0

    def line(self, sent: int, outcome: str) -> str:
        """The log line: key=value pairs a person and a log pipeline can both read."""
        last = self.span.end - 1
        return (
            f"artifact download device={self.device.device_id} sha256={self.sha256} "
            f"range={self.span.start}-{last}/{self.span.size} resumed={str(self.resumed).lower()} "
            f"bytes_sent={sent} outcome={outcome}"
        )


Counter = Callable[[Download, int, str], Coroutine[Any, Any, None]]


async def tracked(
    download: Download, chunks: AsyncIterator[bytes], count: Counter
) -> AsyncGenerator[bytes, None]:
    """`chunks`, then a log line and `count(download, bytes_sent, outcome)` once it ends."""
    sent = 0
    try:
        async for chunk in chunks:
            yield chunk
            sent += len(chunk)  # resumed: the server took the chunk and asks for the next
    finally:
        outcome = SENT if sent == download.span.length else CUT
        log.debug(download.line(sent, outcome))
        task = asyncio.get_running_loop().create_task(count(download, sent, outcome))
        _writes.add(task)
        task.add_done_callback(_writes.discard)


async def count(runtime: Runtime, download: Download, sent: int, outcome: str) -> None:
    """Add the download to the device's counters."""
    device = download.device
    try:
        async with runtime.sessions() as session, session.begin():
            await DeviceRepository(session, device.tenant_id).count_download(
                device.pk, resumed=download.resumed, cut=outcome == CUT, sent=sent
            )
    except Exception:  # counters must never break a download; the log line is still there
        log.warning("could not count %s's download of %s", device.device_id, download.sha256[:12])
