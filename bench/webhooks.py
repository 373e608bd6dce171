"""Webhooks: from an event being recorded to a webhook receiving it, for a burst of events.

`python -m bench.webhooks [--events 1000] [--backend sqlite|postgres]`

One real server with one webhook subscribed to `group.created`, pointing at a small HTTP
receiver run here that stamps each POST as it arrives. `--events` groups are created through
the API (20 at a time); for each event, seconds from its `created_at` (the server's clock, on
this machine) to its arrival (p50/p95/max), how long the whole burst took to arrive, and how
many arrived twice (none should). JSON on stdout (and bench/results/webhooks-<backend>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import Server, database, emit, log, run_server

PARALLEL = 20
WAIT_SECONDS = 300.0


class Arrivals:
    """What the receiver got: each event id with when it arrived, and repeats."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.created: dict[int, float] = {}
        self.repeats = 0
        self.lock = threading.Lock()

    def add(self, body: bytes) -> None:
        now = time.time()
        event = orjson.loads(body)["event"]
        with self.lock:
            if event["id"] in self.at:
                self.repeats += 1
                return
            self.at[event["id"]] = now
            self.created[event["id"]] = datetime.fromisoformat(event["created_at"]).timestamp()


@contextmanager
def receiver(arrivals: Arrivals) -> Iterator[str]:
    """An HTTP server on loopback that answers 200 and records every event POSTed."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrivals.add(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


async def make_events(server: Server, count: int) -> float:
    """Create `count` groups (one group.created event each); when the first was sent."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    gate = asyncio.Semaphore(PARALLEL)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:

        async def one(n: int) -> None:
            async with gate:
                response = await api.post("/api/v1/groups", json={"name": f"bench-{n}"})
                response.raise_for_status()

        started = time.time()
        await asyncio.gather(*(one(n) for n in range(count)))
    return started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure(server: Server, url: str, arrivals: Arrivals, count: int) -> dict[str, Any]:
    hook = {"name": "bench", "url": url, "events": ["group.created"]}
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    httpx.post(f"{server.url}/api/v1/webhooks", json=hook, headers=headers).raise_for_status()
    started = asyncio.run(make_events(server, count))
    created_in = time.time() - started
    deadline = time.monotonic() + WAIT_SECONDS
    while len(arrivals.at) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    latencies = [arrivals.at[i] - arrivals.created[i] for i in arrivals.at]
    return {
        "events": count,
        "arrived": len(arrivals.at),
        "repeated": arrivals.repeats,
        "created_in_seconds": round(created_in, 2),
        "all_arrived_after_seconds": round(max(arrivals.at.values()) - started, 2),
        "latency_seconds": {
            "p50": round(percentile(latencies, 50), 3),
            "p95": round(percentile(latencies, 95), 3),
            "max": round(max(latencies), 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    arrivals = Arrivals()
    with (
        tempfile.TemporaryDirectory() as workdir,
        database(args.backend) as url,
        run_server(Path(workdir), url, []) as server,
        receiver(arrivals) as hook_url,
    ):
        log(f"creating {args.events} events on {args.backend}")
        result = measure(server, hook_url, arrivals, args.events)
    return emit(f"webhooks-{args.backend}", {"backend": args.backend, **result})


if __name__ == "__main__":
    raise SystemExit(main())
