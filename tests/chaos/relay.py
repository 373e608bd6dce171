"""A TCP relay on the host end of a device's veth: it holds each chunk, and can slow the flow.

This kernel has no netem, so delay is made here: the namespace DNATs the device's connections
to the relay, which passes every chunk on `delay` seconds after it arrived (in order, both
ways), at most `rate` bytes a second when set. It counts the bytes it passed from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

CHUNK = 16_384


@dataclass
class Relay:
    """Where it forwards to, how it delays, and what it saw."""

    upstream: tuple[str, int]
    delay: float
    rate: float | None = None
    connections: int = 0
    answered: int = 0  # bytes passed from the server to the device
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, device: asyncio.StreamReader, reply: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.connections += 1
        try:
            server, forward = await asyncio.open_connection(*self.upstream)
        except OSError:
            reply.close()
            return
        pumps = [
            asyncio.create_task(self._pump(device, forward, upstream=True)),
            asyncio.create_task(self._pump(server, reply, upstream=False)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (reply, forward):
                writer.close()
            self.handlers.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        # Chunks wait in a queue stamped with their arrival, so the delay does not add up.
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(held, sink, upstream=upstream))
        try:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(CHUNK):
                    held.put_nowait((time.monotonic() + self.delay, data))
            held.put_nowait((time.monotonic() + self.delay, b""))
            await sender
        finally:
            sender.cancel()

    async def _send(
        self,
        held: asyncio.Queue[tuple[float, bytes]],
        sink: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                due, data = await held.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()
                if not upstream:
                    self.answered += len(data)
                    if self.rate:
                        await asyncio.sleep(len(data) / self.rate)


@contextmanager
def relay(
    host: str, upstream_port: int, delay: float, rate: float | None = None
) -> Iterator[Relay]:
    """Run a relay on `host` (the veth's host end), in a thread, for the block."""
    state = Relay((host, upstream_port), delay, rate)
    loop = asyncio.new_event_loop()
    listening = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with await asyncio.start_server(state.handle, host, 0) as server:
            state.port = server.sockets[0].getsockname()[1]
            listening.set()
            await stop.wait()
            for task in list(state.handlers):
                task.cancel()
            await asyncio.gather(*state.handlers, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert listening.wait(10), "the relay did not start listening"
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
