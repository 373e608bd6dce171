"""SSE fan-out: subscribers on the live event stream; latency from each event's creation."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from bench.http import Pool, Target, request_head
from bench.loadgen.common import Phase, Tally, json_request, say, timed
from signalbeam.sim.stats import LatencyRecorder

STREAM_PATH = "/api/v1/events/stream?type=group.created"
DEADLINE_SECONDS = 15.0


@dataclass
class Subscriber:
    """One live stream and the events it has seen."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    seen: dict[str, float] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    buffer: bytes = b""


async def subscribe(target: Target, admin_token: str) -> Subscriber:
    """Open the stream and wait for its `connected` comment."""
    reader, writer = await asyncio.open_connection(target.host, target.port)
    headers = {"Authorization": f"Bearer {admin_token}", "Accept": "text/event-stream"}
    writer.write(request_head(target, "GET", STREAM_PATH, 0, headers))
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"event stream refused: {head.splitlines()[0]!r}")
    subscriber = Subscriber(reader, writer)
    while b": connected" not in subscriber.buffer:
        subscriber.buffer += await _chunk(reader)
    return subscriber


async def _chunk(reader: asyncio.StreamReader) -> bytes:
    """The next chunk of a chunked body; empty at its end."""
    size = int((await reader.readline()).split(b";")[0], 16)
    if size == 0:
        return b""
    data = await reader.readexactly(size)
    await reader.readexactly(2)
    return data


def _frames(subscriber: Subscriber) -> list[dict[str, Any]]:
    """Complete `data:` payloads in the buffer; the rest stays for the next chunk."""
    *blocks, subscriber.buffer = subscriber.buffer.split(b"\n\n")
    payloads = []
    for block in blocks:
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                payloads.append(orjson.loads(line[6:]))
    return payloads


async def listen(subscriber: Subscriber, expected: int) -> None:
    """Record when each group.created event arrives, until `expected` have."""
    while len(subscriber.seen) < expected:
        data = await _chunk(subscriber.reader)
        if not data:
            return
        arrived = time.time()
        subscriber.buffer += data
        for payload in _frames(subscriber):
            name = payload["data"]["group"]
            subscriber.seen[name] = arrived
            subscriber.created[name] = datetime.fromisoformat(payload["created_at"]).timestamp()


async def _trigger(target: Target, admin_token: str, spec: dict[str, Any]) -> dict[str, float]:
    """Create the groups one by one; when each creating request was answered (wall clock)."""
    pool, tally, answered = Pool(target), Tally(), {}
    for index in range(int(spec["events"])):
        name = f"bench-{index:04d}"
        request = json_request(target, "POST", "/api/v1/groups", {"name": name}, admin_token)
        if await timed(pool, request, tally, expect=201) is not None:
            answered[name] = time.time()
        await asyncio.sleep(float(spec["gap"]))
    pool.close()
    if tally.errors:
        raise RuntimeError(f"creating groups failed: {dict(tally.errors)}")
    return answered


async def run_sse(spec: dict[str, Any]) -> dict[str, Any]:
    """S subscribers, E group.created events: delivery latency and completeness."""
    target = Target(spec["host"], spec["port"])
    count, events = int(spec["subscribers"]), int(spec["events"])
    subscribers = await asyncio.gather(
        *(subscribe(target, spec["admin_token"]) for _ in range(count))
    )
    say(f"{count} subscribers connected; creating {events} groups")
    listeners = [asyncio.create_task(listen(s, events)) for s in subscribers]
    with Phase("events") as phase:
        answered = await _trigger(target, spec["admin_token"], spec)
        _, late = await asyncio.wait(listeners, timeout=DEADLINE_SECONDS)
    for task in late:
        task.cancel()
    for subscriber in subscribers:
        subscriber.writer.close()
    return _result(subscribers, answered, events, phase)


def _result(
    subscribers: list[Subscriber], answered: dict[str, float], events: int, phase: Phase
) -> dict[str, Any]:
    from_created, from_answer = LatencyRecorder(), LatencyRecorder()
    for subscriber in subscribers:
        for name, arrived in subscriber.seen.items():
            from_created.record(max(0.0, arrived - subscriber.created[name]))
            if name in answered:
                from_answer.record(arrived - answered[name])
    expected = events * len(subscribers)
    return {
        "subscribers": len(subscribers),
        "events": events,
        "deliveries": from_created.count,
        "missed": expected - from_created.count,
        "latency_ms": from_created.summary_ms(),
        # Relative to the creating request's answer; negative when the event arrived first.
        "after_creating_response_ms": from_answer.summary_ms(),
        "load_generator_cpu_percent": phase.cpu_percent,
    }
