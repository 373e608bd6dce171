"""Push latency: devices hold watches; one desired-state change; time until each has fetched it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.http import HttpError, Pool, Target, build_request, connect
from bench.loadgen.common import Phase, SyncRequests, Tally, enroll, json_request, say, timed
from bench.loadgen.syncs import device_ids
from signalbeam.sim.stats import LatencyRecorder

DESIRED_PATH = "/api/v1/devices/desired-state"
WATCH_TIMEOUT = 60
DEADLINE_SECONDS = 60.0
SETTLE_SECONDS = 1.0
IDLE_ANSWER_SECONDS = 0.05
IDLE_WAIT_LIMIT = 180.0


@dataclass
class Push:
    """Shared state of one push: when it was sent and what each device saw."""

    requests: SyncRequests
    pool: Pool
    expected: int
    sent_at: float | None = None
    held: int = 0
    failed: int = 0
    all_sent: asyncio.Event = field(default_factory=asyncio.Event)
    # Thousands of simultaneous connects would overflow the server's listen backlog.
    connecting: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(256))
    early: int = 0
    inline: int = 0  # devices that got the desired state in the watch answer itself
    wake: LatencyRecorder = field(default_factory=LatencyRecorder)
    fetch: LatencyRecorder = field(default_factory=LatencyRecorder)
    errors: Tally = field(default_factory=Tally)

    def settled(self, held: bool) -> None:
        """Count a watch written (or failed); the last one sets `all_sent`."""
        self.held += held
        self.failed += not held
        if self.held + self.failed >= self.expected:
            self.all_sent.set()


async def probe(target: Target, admin_token: str) -> str | None:
    """Why the scenario cannot run (no desired-state endpoint yet), or None when it can."""
    body = {"devices": [], "spec": {}, "summary": "bench probe"}
    connection = await connect(target)
    try:
        status, _ = await connection.request(
            json_request(target, "POST", DESIRED_PATH, body, admin_token)
        )
    finally:
        connection.close()
    if status in (404, 405):
        return f"endpoint missing: POST {DESIRED_PATH} answered {status}"
    if status in (401, 403):
        raise RuntimeError(f"POST {DESIRED_PATH} refused the admin token (HTTP {status})")
    return None


async def _hold_watch(
    target: Target, device_id: str, credential: str, push: Push
) -> tuple[bool, bool]:
    """Hold a watch until it answers `changed`: (after the push was sent, desired state inline)."""
    path = f"/api/device/v1/watch?generation=0&timeout={WATCH_TIMEOUT}&with_desired=true"
    request = build_request(target, "GET", path, headers={"Authorization": f"Bearer {credential}"})
    try:
        async with push.connecting:
            connection = await connect(target)
    except OSError:
        push.settled(held=False)
        raise
    push.settled(held=True)
    try:
        while True:
            status, body = await connection.request(request)
            if status != 200:
                raise HttpError(f"watch answered HTTP {status}")
            answer = orjson.loads(body)
            if answer["status"] == "changed":
                # The answer may carry the new desired state: fetched in the same round trip.
                inline = bool((answer.get("desired") or {}).get("generation", 0))
                return push.sent_at is not None, inline
    finally:
        connection.close()


async def _device(target: Target, device_id: str, credential: str, push: Push) -> None:
    try:
        in_time, inline = await _hold_watch(target, device_id, credential, push)
    except (HttpError, OSError) as err:
        push.errors.failed(f"watch: {type(err).__name__}: {err}"[:80])
        return
    if not in_time or push.sent_at is None:
        push.early += 1
        return
    push.wake.record(time.perf_counter() - push.sent_at)
    if inline:
        push.inline += 1
        push.fetch.record(time.perf_counter() - push.sent_at)
        return
    body = await timed(push.pool, push.requests.get(device_id, 0), push.errors)
    if body is not None and orjson.loads(body)["generation"] >= 1:
        push.fetch.record(time.perf_counter() - push.sent_at)


async def _change_all(target: Target, admin_token: str, ids: list[str], push: Push) -> float:
    body = {"devices": ids, "spec": {"bundle": "bench", "version": "1.0.0"}, "summary": "bench"}
    request = json_request(target, "POST", DESIRED_PATH, body, admin_token)
    connection = await connect(target)
    push.sent_at = time.perf_counter()
    status, answer = await connection.request(request)
    seconds = time.perf_counter() - push.sent_at
    connection.close()
    if status != 200:
        raise RuntimeError(f"POST {DESIRED_PATH} answered HTTP {status}: {answer[:200]!r}")
    return seconds


async def _initial_syncs(target: Target, credentials: dict[str, str]) -> None:
    """Every device fetches generation 0 once, as an agent does when it starts."""
    pool, tally, limit = Pool(target), Tally(), asyncio.Semaphore(64)
    first = SyncRequests(target, credentials, known_generation=-1)

    async def one(device_id: str) -> None:
        async with limit:
            await timed(pool, first.get(device_id, 0), tally)

    await asyncio.gather(*(one(device_id) for device_id in credentials))
    pool.close()
    if tally.errors:
        raise RuntimeError(f"initial syncs failed: {dict(tally.errors)}")


async def _start_watches(
    target: Target, credentials: dict[str, str], push: Push
) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(_device(target, device_id, credential, push))
        for device_id, credential in credentials.items()
    ]
    await push.all_sent.wait()
    await _until_idle(target)
    return tasks


async def _until_idle(target: Target) -> None:
    """Wait until the server has worked through the watch requests (it answers /readyz fast).

    Each watch costs the server database work before it is held; a change sent while that
    backlog lasts would measure the backlog, not the push.
    """
    pool, request = Pool(target), build_request(target, "GET", "/readyz")
    deadline = time.perf_counter() + IDLE_WAIT_LIMIT
    fast = 0
    while fast < 2 and time.perf_counter() < deadline:
        started = time.perf_counter()
        await pool.request(request)
        fast = fast + 1 if time.perf_counter() - started < IDLE_ANSWER_SECONDS else 0
        await asyncio.sleep(SETTLE_SECONDS)
    pool.close()


async def run_push(spec: dict[str, Any]) -> dict[str, Any]:
    """One change to D watching devices; how long until each has fetched it by sync."""
    target = Target(spec["host"], spec["port"])
    missing = await probe(target, spec["admin_token"])
    if missing is not None:
        return {"skipped": missing}
    ids = device_ids(int(spec["devices"]))
    credentials, _ = await enroll(target, spec["token"], ids)
    await _initial_syncs(target, credentials)
    push = Push(SyncRequests(target, credentials, known_generation=0), Pool(target), len(ids))
    tasks = await _start_watches(target, credentials, push)
    say(f"{push.held} devices holding a watch; changing desired state for all of them")
    with Phase("push") as phase:
        post_seconds = await _change_all(target, spec["admin_token"], ids, push)
        _, late = await asyncio.wait(tasks, timeout=DEADLINE_SECONDS)
    for task in late:
        task.cancel()
    push.pool.close()
    return _result(len(ids), push, post_seconds, phase, len(late))


def _result(count: int, push: Push, post_seconds: float, phase: Phase, late: int) -> dict[str, Any]:
    fetched = push.fetch.count
    # Of all devices: one that never fetched the change did not get it within a second either.
    within = push.fetch.fraction_within(1.0) * fetched / count if fetched else 0.0
    return {
        "devices": count,
        "watching": push.held,
        "post_ms": round(post_seconds * 1000, 1),
        "fetched": fetched,
        "fetched_in_watch_answer": push.inline,
        "missed": count - fetched,
        "late_after_deadline": late,
        "early_wakeups": push.early,
        "within_1s": round(within, 4),
        "fetch_latency_ms": push.fetch.summary_ms(),
        "wake_latency_ms": push.wake.summary_ms(),
        "errors": dict(push.errors.errors.most_common(5)),
        "load_generator_cpu_percent": phase.cpu_percent,
    }
