"""Alerts: from devices going silent to the incident and the webhook, in a storm, at fleet size.

`python -m bench.alerts [--devices 10000] [--interval 10] [--for 40] [--storm 300]
[--big-storm 1000] [--backend sqlite|postgres] [--quick]`

One real server (sync interval `--interval`) with a webhook notifier pointing at a small HTTP
receiver in its own process (bench/receiver.py), which stamps each message as it arrives, and
one `device_offline` rule for `--for` T. A simulated fleet (in this process, as `signalbeam sim` runs it) comes online; then:

- storm: `--storm` devices (one block of ids, a site) go silent at once. For each, seconds
  from its last sync (the server's `last_seen_at`) + T to its incident opening (the API's
  `last_fired_at`) and to the webhook receiving a message naming it (p50/p95/max); the
  messages that storm made (grouped); the rest of the fleet's sync latency while it ran, against
  the ingest targets (p95 <= 25 ms, p99 <= 100 ms); the server's and the simulator's CPU;
- back: the same devices sync again: seconds from each one's first sync back to its incident
  resolving and to the webhook naming it;
- big storm: `--big-storm` other devices silent at once, then back: how many messages each way.

T is longer than the server's offline threshold (3 x interval) plus its sweep (5 s): a device
cannot be called offline sooner, so a shorter T fires when the presence sweeper marks it, which
measures the sweeper, not alerting. JSON on stdout (and bench/results/alerts-<backend>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.__main__ import raise_file_limit
from bench.harness import Server, Skip, database, emit, log, run_server
from bench.receiver import Inbox, receiving
from bench.session_ops import Meter
from signalbeam.sim.device import Behaviour, DeviceState, VirtualDevice
from signalbeam.sim.fleet import Fleet, FleetConfig
from signalbeam.sim.stats import LatencyRecorder, percentile

RULE = "bench-offline"
POLL_SECONDS = 0.25
PROGRESS_SECONDS = 10.0
# Enrollment is server-bound (about 100 devices/s on SQLite on an idle 2-core machine, half that
# beside test suites): allow 25/s, then the ramp, then a minute.
ENROLL_RATE_FLOOR = 25.0
FIRST_SYNCS_PER_SECOND = 200.0
# After the last device of a storm is named, listen this long for the storm's summaries.
QUIET_SECONDS = 35.0
TARGET_SECONDS = 5.0
# A device that went offline within 10 min of its last incident resolving reopens that one.
FIRING = ("opened", "reopened")
RESOLVED = ("resolved",)


@dataclass(frozen=True)
class Plan:
    """Fleet size, timing and storm sizes (seconds)."""

    devices: int = 10_000
    interval: float = 10.0
    for_seconds: float = 40.0
    storm: int = 300
    big_storm: int = 1000

    @property
    def ramp(self) -> float:
        """Seconds over which the first syncs spread."""
        return max(self.interval, self.devices / FIRST_SYNCS_PER_SECOND)

    @property
    def online_timeout(self) -> float:
        """How long enrolling and the first syncs may take, scaled with the fleet."""
        return self.devices / ENROLL_RATE_FLOOR + self.ramp + 60.0


@dataclass
class Message:
    """One webhook POST as it arrived (wall clock)."""

    at: float
    body: dict[str, Any]

    @property
    def subjects(self) -> list[str]:
        """The devices it names (one, or each of a group)."""
        if self.body.get("type") == "incident_group":
            return [str(i["subject"]) for i in self.body.get("incidents", [])]
        return [str(self.body.get("subject"))]

    @property
    def transition(self) -> str:
        return str(self.body.get("transition"))


@dataclass
class Receiver:
    """The webhook receiver's messages (it runs in its own process: bench/receiver.py)."""

    inbox: Inbox
    messages: list[Message] = field(default_factory=list)

    def since(self, at: float, transitions: tuple[str, ...]) -> list[Message]:
        """Messages of these transitions that arrived from `at` (wall clock) on."""
        lines = self.inbox.received()
        self.messages += [Message(t, orjson.loads(b)) for t, b in lines[len(self.messages) :]]
        return [m for m in self.messages if m.at >= at and m.transition in transitions]


def seconds_summary(values: list[float]) -> dict[str, Any]:
    """p50/p95/max of latencies in seconds (pure)."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.5), 2),
        "p95": round(percentile(ordered, 0.95), 2),
        "max": round(ordered[-1], 2),
    }


def first_named(messages: list[Message], subjects: set[str]) -> dict[str, float]:
    """When each subject was first named by a message (pure)."""
    out: dict[str, float] = {}
    for message in sorted(messages, key=lambda m: m.at):
        for subject in message.subjects:
            if subject in subjects and subject not in out:
                out[subject] = message.at
    return out


def message_account(messages: list[Message]) -> dict[str, Any]:
    """How many messages, how many grouped, and the size of each group (pure)."""
    groups = [
        int(m.body.get("count", 0)) for m in messages if m.body.get("type") == "incident_group"
    ]
    return {
        "messages": len(messages),
        "single": len(messages) - len(groups),
        "grouped": len(groups),
        "group_sizes": groups,
    }


def _wall(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


class Bench:
    """The server's API, the receiver and the fleet, with what one phase needs."""

    def __init__(self, api: httpx.AsyncClient, hooks: Receiver, fleet: Fleet, server: Server):
        self.api, self.hooks, self.fleet, self.server = api, hooks, fleet, server
        self.offset = time.time() - time.monotonic()  # monotonic -> wall clock

    def meter(self) -> Meter:
        """CPU of the server and of this process (the simulator)."""
        return Meter({"server": [self.server.process.pid], "simulator": [os.getpid()]})

    async def offline_last_seen(self, ids: set[str]) -> dict[str, float]:
        """The server's last sync of each of `ids` that it lists offline (wall clock)."""
        out: dict[str, float] = {}
        offset = 0
        while True:
            params: dict[str, str | int] = {"status": "offline", "limit": 1000, "offset": offset}
            page = (await self.api.get("/api/v1/devices", params=params)).json()
            for item in page["items"]:
                seen = _wall(item.get("last_seen_at"))
                if item["device_id"] in ids and seen is not None:
                    out[item["device_id"]] = seen
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return out

    async def incidents(self, state: str) -> list[dict[str, Any]]:
        """Every incident of the bench rule in `state`."""
        items: list[dict[str, Any]] = []
        while True:
            params: dict[str, str | int] = {"state": state, "limit": 1000, "offset": len(items)}
            page = (await self.api.get("/api/v1/alerts/incidents", params=params)).json()
            items += [i for i in page["items"] if i["rule"] == RULE]
            if not page["items"] or len(items) >= page["total"]:
                return items


async def until(check: Any, what: str, timeout: float) -> float:
    """Await `check()` until true; seconds it took (RuntimeError naming `what` at `timeout`)."""
    began = shown = time.monotonic()
    while not await check():
        now = time.monotonic()
        if now - began > timeout:
            raise RuntimeError(f"{what} did not happen within {timeout:g} s")
        if now - shown >= PROGRESS_SECONDS:
            shown = now
            log(f"  [{now - began:.0f}s] waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - began


def running(fleet: Fleet) -> list[VirtualDevice]:
    """The devices the server did not refuse."""
    return [d for d in fleet.devices.values() if d.state is not DeviceState.STOPPED]


async def bring_online(fleet: Fleet, plan: Plan) -> dict[str, Any]:
    """Enroll and start the fleet; seconds until every device had a sync answered."""
    began = time.monotonic()
    await fleet.start()
    enrolled = time.monotonic() - began
    log(f"  {fleet.stats.enrolled} enrolled in {enrolled:.0f}s; first syncs over {plan.ramp:g}s")

    async def all_synced() -> bool:
        return all(d.synced_at is not None for d in running(fleet))

    online = await until(all_synced, "a first sync of every device", plan.online_timeout)
    return {
        "devices": len(running(fleet)),
        # Refused at their first sync (HTTP 401): the server lost their enrollment (see notes).
        "refused": fleet.stats.stopped,
        "enroll_seconds": round(enrolled, 1),
        "first_syncs_done_seconds": round(online, 1),
    }


async def silence(bench: Bench, ids: list[str], plan: Plan) -> dict[str, Any]:
    """Silence `ids` at once; incident and webhook latency from last sync + T, CPU, the rest's
    sync latency, until every one was named and the storm went quiet."""
    wanted = set(ids)
    meter, began = bench.meter(), time.time()
    bench.fleet.stats.sync_latency = LatencyRecorder()
    failed = bench.fleet.stats.syncs_failed
    bench.fleet.set_offline(ids)

    async def all_named() -> bool:
        named = first_named(bench.hooks.since(began, FIRING), wanted)
        return len(named) == len(wanted)

    timeout = plan.for_seconds + 3 * plan.interval + 5 + QUIET_SECONDS + 60
    with contextlib.suppress(RuntimeError):  # the counts say how many were named
        await until(all_named, f"the webhook naming all {len(ids)} silent devices", timeout)
    await asyncio.sleep(QUIET_SECONDS)  # a summary in the storm would come within its window
    rest = bench.fleet.stats.sync_latency.summary_ms()
    cpu = meter.read()
    seen = await bench.offline_last_seen(wanted)
    opened = {i["subject"]: _wall(i["last_fired_at"]) for i in await bench.incidents("firing")}
    messages = bench.hooks.since(began, FIRING)
    named = first_named(messages, wanted)
    due = {d: at + plan.for_seconds for d, at in seen.items()}
    return {
        "devices": len(ids),
        "incidents": sum(1 for d in wanted if d in opened),
        "named_by_webhook": len(named),
        # Devices not silenced that fired anyway: the simulator or server fell behind.
        "others_firing": sum(1 for d in opened if d not in wanted),
        "rest_syncs_failed": bench.fleet.stats.syncs_failed - failed,
        "incident_after_due_seconds": seconds_summary(
            [opened[d] - due[d] for d in due if opened.get(d) is not None]  # type: ignore[operator]
        ),
        "webhook_after_due_seconds": seconds_summary(
            [named[d] - due[d] for d in due if d in named]
        ),
        "first_message_after_first_due_seconds": round(
            min(m.at for m in messages) - min(due.values()), 2
        )
        if messages and due
        else None,
        **message_account(messages),
        "rest_sync_latency_ms": rest,
        **cpu,
    }


async def restore(bench: Bench, ids: list[str], plan: Plan) -> dict[str, Any]:
    """Bring `ids` back; seconds from each one's first sync back to resolved and to the webhook."""
    wanted = set(ids)
    meter, began, clock = bench.meter(), time.time(), time.monotonic()
    bench.fleet.set_online(ids)
    back: dict[str, float] = {}

    async def all_named() -> bool:
        for device_id in wanted - back.keys():
            synced = bench.fleet.devices[device_id].synced_at
            if synced is not None and synced > clock:
                back[device_id] = synced + bench.offset
        named = first_named(bench.hooks.since(began, RESOLVED), wanted)
        return len(named) == len(wanted)

    timeout = 2 * plan.interval + QUIET_SECONDS + 60
    with contextlib.suppress(RuntimeError):  # the counts say how many were named
        await until(all_named, f"the webhook naming all {len(ids)} devices resolved", timeout)
    await asyncio.sleep(QUIET_SECONDS)
    cpu = meter.read()
    resolved = {i["subject"]: _wall(i["resolved_at"]) for i in await bench.incidents("resolved")}
    messages = bench.hooks.since(began, RESOLVED)
    named = first_named(messages, wanted)
    return {
        "devices": len(ids),
        "back": len(back),
        "named_by_webhook": len(named),
        "resolved_after_back_seconds": seconds_summary(
            [resolved[d] - at for d, at in back.items() if resolved.get(d) is not None]  # type: ignore[operator]
        ),
        "webhook_after_back_seconds": seconds_summary(
            [named[d] - at for d, at in back.items() if d in named]
        ),
        **message_account(messages),
        **cpu,
    }


async def setup(api: httpx.AsyncClient, hook: str, plan: Plan) -> None:
    """The webhook notifier and the bench's offline rule (the default 5 min one switched off)."""
    notifier = {"name": "bench-hook", "kind": "webhook", "url": hook, "min_severity": "info"}
    (await api.post("/api/v1/alerts/notifiers", json=notifier)).raise_for_status()
    rule = {"name": RULE, "kind": "device_offline", "for": f"{plan.for_seconds:g}s"}
    (
        await api.post("/api/v1/alerts/rules", json={**rule, "severity": "critical"})
    ).raise_for_status()
    off = await api.patch("/api/v1/alerts/rules/device-offline", json={"enabled": False})
    off.raise_for_status()


async def measure(
    server: Server, hooks: Receiver, hook: str, plan: Plan, workdir: Path
) -> dict[str, Any]:
    """Online, storm, back, big storm, back: one server, one fleet."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:
        await setup(api, hook, plan)
        token = await asyncio.to_thread(server.enrollment_token)
        config = FleetConfig(
            server=server.url,
            token=token,
            devices=plan.devices,
            behaviour=Behaviour(interval=plan.interval, fail_rate=0.0),
            prefix="alert-",
            state_file=workdir / "sim.json",
            ramp=plan.ramp,
        )
        fleet = Fleet(config)
        try:
            result: dict[str, Any] = {"online": await bring_online(fleet, plan)}
            await asyncio.sleep(plan.interval)  # steady: every device synced again
            bench = Bench(api, hooks, fleet, server)
            ids = [d.device_id for d in running(fleet)]
            site, big = ids[: plan.storm], ids[plan.storm : plan.storm + plan.big_storm]
            for name, block in (("storm", site), ("big_storm", big)):
                log(f"  {name}: {len(block)} devices silent")
                result[name] = await silence(bench, block, plan)
                log(
                    f"    {_line(result[name], 'incident_after_due_seconds', 'webhook_after_due_seconds')}"
                )
                result[f"{name}_back"] = await restore(bench, block, plan)
                log(
                    f"    back: {_line(result[f'{name}_back'], 'resolved_after_back_seconds', 'webhook_after_back_seconds')}"
                )
        finally:
            await fleet.stop()
        result["simulator"] = {k: v for k, v in fleet.summary().items() if k != "sync_latency_ms"}
    return result


def _line(phase: dict[str, Any], incident: str, hook: str) -> str:
    a, b = phase[incident], phase[hook]
    return (
        f"incident p50 {a['p50']} s, p95 {a['p95']} s, max {a['max']} s; webhook p50 {b['p50']} s,"
        f" p95 {b['p95']} s, max {b['max']} s; {phase['messages']} messages"
        f" ({phase['grouped']} grouped {phase['group_sizes']})"
    )


def targets(result: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    """Incident within T + 5 s, the storm's first message within 5 s, ingest held, few messages."""
    storm, big = result["storm"], result["big_storm"]
    opened = storm["incident_after_due_seconds"]["max"]
    first = storm["first_message_after_first_due_seconds"]
    named = storm["webhook_after_due_seconds"]["p95"]
    latency = storm["rest_sync_latency_ms"]
    few = big["messages"] + result["big_storm_back"]["messages"]
    return [
        {"target": f"incident opened by T + 5 s ({plan.storm} at once, max)", "measured": opened,
         "met": opened is not None and opened <= TARGET_SECONDS},
        {"target": "first notification of the storm by T + 5 s", "measured": first,
         "met": first is not None and first <= TARGET_SECONDS},
        {"target": "each device named by the webhook by T + 5 s (p95)", "measured": named,
         "met": named is not None and named <= TARGET_SECONDS},
        {"target": "rest of the fleet: sync p95 <= 25 ms during the storm", "measured": latency["p95"],
         "met": latency["p95"] is not None and latency["p95"] <= 25},
        {"target": "rest of the fleet: sync p99 <= 100 ms during the storm", "measured": latency["p99"],
         "met": latency["p99"] is not None and latency["p99"] <= 100},
        {"target": f"{plan.big_storm} offline and back: a handful of messages (<= 10)",
         "measured": few, "met": few <= 10},
    ]  # fmt: skip


def run(backend: str, plan: Plan) -> dict[str, Any]:
    """A fresh database and server, the receiver, the fleet and both storms."""
    load = [round(x, 2) for x in os.getloadavg()]
    extra = ["--sync-interval", f"{plan.interval:g}s"]
    with (
        tempfile.TemporaryDirectory(prefix="signalbeam-bench-alerts-") as workdir,
        database(backend) as url,
        run_server(Path(workdir), url, extra) as server,
        receiving(Path(workdir), status=204) as inbox,
    ):
        hooks, hook = Receiver(inbox), inbox.url
        log(
            f"alerts ({backend}): {plan.devices:,} devices, storms of {plan.storm} and {plan.big_storm}"
        )
        began = time.monotonic()
        try:
            result = _run_loop(measure(server, hooks, hook, plan, Path(workdir)))
        except (httpx.HTTPError, RuntimeError):
            log(server.log_path.read_text(errors="replace")[-3000:])
            raise
    return {
        "backend": backend,
        "plan": {**plan.__dict__},
        **result,
        "targets": targets(result, plan),
        "load_average_before": load,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - began, 1),
    }


def _run_loop(work: Any) -> dict[str, Any]:
    # The simulator's own event loop, as `signalbeam sim` runs it (uvloop when installed).
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result: dict[str, Any] = runner.run(work)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse, run, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0, help="sync interval (seconds)")
    parser.add_argument("--for", dest="for_seconds", type=float, default=None,
                        help="the rule's T (seconds) [default: 3 x interval + 10]")  # fmt: skip
    parser.add_argument("--storm", type=int, default=300)
    parser.add_argument("--big-storm", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="1,500 devices, a storm of 200")
    args = parser.parse_args(argv)
    devices, storm = (
        (min(args.devices, 1500), min(args.storm, 200))
        if args.quick
        else (args.devices, args.storm)
    )
    for_seconds = args.for_seconds if args.for_seconds is not None else 3 * args.interval + 10
    plan = Plan(devices, args.interval, for_seconds, storm, args.big_storm)
    if plan.storm + plan.big_storm > plan.devices:
        parser.error("--storm plus --big-storm must not be more than --devices")
    raise_file_limit()
    try:
        result = run(args.backend, plan)
    except Skip as skip:
        log(f"skipped: {skip}")
        return 0
    return emit(f"alerts-{args.backend}", result)


if __name__ == "__main__":
    sys.exit(main())
