"""Webhooks: from an event being recorded to a webhook receiving it, for a burst of events.

`python -m bench.webhooks [--events 1000] [--backend sqlite|postgres] [--dead-webhook]`

One real server with one webhook subscribed to `group.created`, pointing at a small HTTP
receiver in its own process (bench/receiver.py) that stamps each POST as it arrives.
`--events` groups are created through the API (20 at a time); for each event, seconds from its
`created_at` (the server's clock, on this machine) to its arrival (p50/p95/max), how long the
whole burst took to arrive, and how many arrived twice (none should). `--dead-webhook` first
subscribes a second webhook to the same events whose receiver takes every POST and never
answers (each send waits out its 10 s timeout): the first one's figures should not change.
JSON on stdout (and bench/results/webhooks-<backend>[-dead].json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import Server, database, emit, log, run_server
from bench.receiver import Inbox, receiving

PARALLEL = 20
WAIT_SECONDS = 300.0


@dataclass
class Arrivals:
    """What the receiver got: each event id with when it arrived and was recorded, and repeats."""

    at: dict[int, float] = field(default_factory=dict)
    created: dict[int, float] = field(default_factory=dict)
    repeats: int = 0

    @classmethod
    def of(cls, inbox: Inbox) -> Arrivals:
        arrivals = cls()
        for arrived, body in inbox.received():
            event = orjson.loads(body)["event"]
            if event["id"] in arrivals.at:
                arrivals.repeats += 1
                continue
            arrivals.at[event["id"]] = arrived
            arrivals.created[event["id"]] = datetime.fromisoformat(event["created_at"]).timestamp()
        return arrivals


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


def subscribe(server: Server, name: str, url: str) -> None:
    hook = {"name": name, "url": url, "events": ["group.created"]}
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    httpx.post(f"{server.url}/api/v1/webhooks", json=hook, headers=headers).raise_for_status()


def measure(server: Server, inbox: Inbox, count: int) -> dict[str, Any]:
    subscribe(server, "bench", inbox.url)
    started = asyncio.run(make_events(server, count))
    created_in = time.time() - started
    deadline = time.monotonic() + WAIT_SECONDS
    arrivals = Arrivals.of(inbox)
    while len(arrivals.at) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        arrivals = Arrivals.of(inbox)
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
    parser.add_argument(
        "--dead-webhook",
        action="store_true",
        help="also subscribe a webhook whose receiver takes each POST and never answers",
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database(args.backend))
        server = stack.enter_context(run_server(workdir, url, []))
        inbox = stack.enter_context(receiving(workdir))
        if args.dead_webhook:
            dead = stack.enter_context(receiving(workdir, status=0, name="dead"))
            subscribe(server, "dead", dead.url)  # first: its deliveries come first
        log(f"creating {args.events} events on {args.backend}")
        result = measure(server, inbox, args.events)
    suffix = "-dead" if args.dead_webhook else ""
    result = {"backend": args.backend, "dead_webhook": args.dead_webhook, **result}
    return emit(f"webhooks-{args.backend}{suffix}", result)


if __name__ == "__main__":
    raise SystemExit(main())
