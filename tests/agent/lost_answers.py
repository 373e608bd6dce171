"""A loopback HTTP proxy that forwards chosen requests to the real server and drops the answer.

The server has done the work (stored the sync, the batch, the enrollment); the client sees its
connection close with no response, as when a link dies between the two. Every other request
is passed through untouched. One request per client connection (`Connection: close` both
ways), which keeps the parsing to a request head and a Content-Length body.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.components import free_port

HEAD_END = b"\r\n\r\n"


@dataclass
class LostAnswers:
    """Which answers to drop: (path, n, needle) is the nth request to the path (1-based)
    whose body holds `needle`, dropped once."""

    upstream: tuple[str, int]
    drop: set[tuple[str, int, bytes]]
    seen: Counter[tuple[str, bytes]] = field(default_factory=Counter)
    dropped: list[tuple[str, int]] = field(default_factory=list)
    url: str = ""
    # Strong references: asyncio's stream protocol drops its own when the client goes away, and
    # a handler still awaiting `wait_closed()` was then garbage-collected while pending (an
    # unraisable "coroutine ignored GeneratorExit" and an unclosed socket at teardown).
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:
            self.handlers.add(me)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            path = request.split(b" ", 2)[1].split(b"?", 1)[0].decode()
            rules = [rule for rule in self.drop if rule[0] == path and rule[2] in request]
            for needle in {needle for _, _, needle in rules}:
                self.seen[path, needle] += 1
            answer = await self._forward(request)
            if any(self.seen[path, needle] == nth for _, nth, needle in rules):
                self.dropped.append((path, max(self.seen[path, n] for _, _, n in rules)))
                return  # the server did the work; the client never hears of it
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client or the server went away, or the proxy is stopping
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.handlers.discard(me)

    async def _forward(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()  # Connection: close, so the answer ends at EOF
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(HEAD_END)
    except asyncio.IncompleteReadError:
        return None
    lines = head[: -len(HEAD_END)].split(b"\r\n")
    kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in kept
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    body = await reader.readexactly(length)
    return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + HEAD_END + body


@contextmanager
def lost_answers(upstream_url: str, drop: set[tuple[str, int, bytes]]) -> Iterator[LostAnswers]:
    """Run the proxy on a loopback port of its own, in a thread, for the block."""
    host, port = upstream_url.removeprefix("http://").rsplit(":", 1)
    proxy = LostAnswers((host, int(port)), drop)
    listen = free_port()
    proxy.url = f"http://127.0.0.1:{listen}"
    loop = asyncio.new_event_loop()
    listening = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with await asyncio.start_server(proxy.handle, "127.0.0.1", listen):
            listening.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert listening.wait(10), "the proxy did not start listening"
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        for task in asyncio.all_tasks(loop):
            task.cancel()
        pending = asyncio.all_tasks(loop)
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
