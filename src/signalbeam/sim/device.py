"""One virtual device: syncs on a schedule, long-polls for changes, applies desired state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from signalbeam import __version__
from signalbeam.domain.model import DesiredKind
from signalbeam.protocol.device_v1 import DesiredState, SyncResponse, WatchResponse
from signalbeam.protocol.sessions import AGENT_UNIT
from signalbeam.protocol.spec_rules import app_update_order, container_update_order
from signalbeam.sim.metrics import MetricWalk
from signalbeam.sim.reconnect import Reconnect, retry_after
from signalbeam.sim.sessions import SessionPeer
from signalbeam.sim.stats import FleetStats

log = logging.getLogger("signalbeam.sim")

SYNC_PATH = "/api/device/v1/sync"
WATCH_PATH = "/api/device/v1/watch"
# Extra time a held watch may take on top of its own timeout before the client gives up.
WATCH_GRACE_SECONDS = 15.0
FAILURE_REASONS = (
    "image pull failed: registry 10.0.0.5:5000 unreachable (connection refused)",
    "health check failed: http://127.0.0.1:8080/health returned 503 after 60s",
    "artifact sha256 mismatch: expected 9f2c…e41a, got 03b7…c2d9 (download corrupted?)",
    "container warehouse-monitor exited with code 137 (out of memory) 3 times in 60s",
    "not enough disk space on /data: 120 MB free, bundle needs 480 MB",
    "signature verification failed: manifest not signed by a pinned key",
)
# What the unit "wrote" before the failures a unit causes (the others fail before anything
# runs), so a demo shows the lines a real agent reports beside the reason.
FAILURE_LOGS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    FAILURE_REASONS[1]: (
        None,  # the first unit of the bundle being applied
        (
            "INFO  starting (config /etc/monitor/config.toml)",
            "INFO  listening on 0.0.0.0:8080",
            "WARN  sensor bus /dev/ttyUSB0: no such device; retrying in 5s",
            "WARN  sensor bus /dev/ttyUSB0: no such device; retrying in 5s",
            "ERROR GET /health -> 503: 0 of 4 sensors answering",
        ),
    ),
    FAILURE_REASONS[3]: (
        "warehouse-monitor",
        (
            "INFO  starting (config /etc/monitor/config.toml)",
            "INFO  loading the door model (412 MB)",
            "Killed",
        ),
    ),
}
PLATFORMS = (
    ("Debian GNU/Linux 12 (bookworm)", "6.1.0-18-arm64", "aarch64"),
    ("Raspberry Pi OS (bookworm)", "6.6.31+rpt-rpi-v8", "aarch64"),
    ("Raspbian GNU/Linux 11 (bullseye)", "6.1.21-v7+", "armv7l"),
    ("Ubuntu 22.04.4 LTS", "5.15.0-105-generic", "x86_64"),
)


class DeviceState(StrEnum):
    """Where a virtual device is in its life."""

    IDLE = "idle"
    RUNNING = "running"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Behaviour:
    """How every device of a fleet behaves (seconds and fractions)."""

    interval: float = 10.0
    watch: bool = False
    watch_timeout: float = 30.0
    fail_rate: float = 0.0
    apply_time: float = 2.0
    # Sessions are offered on the watch, so only watching devices answer them.
    answer_sessions: bool = True
    log_interval: float = 1.0
    exec_fail_rate: float = 0.0
    # How long a rebooting device stays silent before it syncs with a new boot id.
    reboot_time: float = 2.0


def facts(device_id: str, rng: random.Random) -> dict[str, Any]:
    """What the device says it is (device API v1 `Facts`)."""
    os_name, kernel, arch = rng.choice(PLATFORMS)
    return {
        "hostname": device_id,
        "os": os_name,
        "arch": arch,
        "kernel": kernel,
        "agent_version": f"sim-{__version__}",
        "ip_addresses": [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"],
        "timezone": "Europe/Oslo",
    }


# httpcore's anyio backend raises AttributeError when a connection is reset while it is being
# set up (anyio asks a socket already closed for its peer name): seen for 19 of 10,000 devices
# when the server stopped under them. It is a failed connect, not a bug of this simulator, and
# must not end the device's loop (those 19 never came back).
TRANSPORT_ERRORS = (httpx.HTTPError, AttributeError)


def error_kind(err: Exception) -> str:
    """A short name for a failed request, used to count errors by kind."""
    if isinstance(err, AttributeError):
        return "ConnectError"
    return type(err).__name__


def problem_detail(response: httpx.Response) -> str:
    """`HTTP 401: <detail>` from a problem+json answer, or just the status."""
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    return f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}"


def failure_evidence(reason: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`failed_unit` and `failure_log` for a simulated failure a unit caused, else nothing."""
    if reason not in FAILURE_LOGS:
        return {}
    unit, lines = FAILURE_LOGS[reason]
    bundle = spec.get("bundle") if spec.get("kind") == "bundle" else None
    units = (
        [*bundle.get("containers", []), *bundle.get("apps", [])] if isinstance(bundle, dict) else []
    )
    first = str(units[0].get("name")) if units and isinstance(units[0], dict) else "monitor"
    return {"failed_unit": unit or first, "failure_log": list(lines)}


def running_state(
    spec: dict[str, Any], since: datetime, before: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The reported bundle, version, digest and items once a desired bundle document runs.

    A unit whose image or artifact changed since `before` says in which order it was
    replaced, as the agent does (start-first where two copies can run).
    """
    bundle = spec.get("bundle") if spec.get("kind") == "bundle" else None
    if not isinstance(bundle, dict):
        return {}  # a raw desired state names no bundle
    ref = f"{bundle.get('name')}@{bundle.get('version')}"
    items = [
        {
            "kind": "container",
            "name": unit.get("name"),
            "state": "running",
            "healthy": True,
            "since": since.isoformat(),
            "image": unit.get("image"),
            "bundle": ref,
        }
        for unit in bundle.get("containers", [])
    ] + [
        {
            "kind": "app",
            "name": unit.get("name"),
            "state": "running",
            "healthy": True,
            "since": since.isoformat(),
            "artifact_sha256": (unit.get("artifact") or {}).get("sha256"),
            "bundle": ref,
        }
        for unit in bundle.get("apps", [])
    ]
    units = [*bundle.get("containers", []), *bundle.get("apps", [])]
    previous = {(i.get("kind"), i.get("name")): i for i in (before or {}).get("items", [])}
    for item, unit in zip(items, units, strict=True):
        _note_update_order(item, unit, previous.get((item["kind"], item["name"])))
    return {
        "bundle": bundle.get("name"),
        "version": bundle.get("version"),
        "digest": spec.get("digest"),
        "items": items,
        **applied_config(spec),
    }


def applied_config(spec: dict[str, Any]) -> dict[str, Any]:
    """`config` applied, naming the digest of the config the document carries, if any."""
    config = spec.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    return {"config": {"digest": digest, "status": "applied"}} if digest else {}


def _note_update_order(
    item: dict[str, Any], unit: dict[str, Any], before: dict[str, Any] | None
) -> None:
    if before is None:
        return
    what = ("image", "artifact_sha256")
    if all(item.get(key) == before.get(key) for key in what):
        if before.get("update_order"):
            item["update_order"] = before["update_order"]  # not replaced this time
        return
    declared = unit.get("update_order")
    if item["kind"] == "container":
        item["update_order"] = container_update_order(declared, list(unit.get("ports") or []))
    else:
        item["update_order"] = app_update_order(declared)


class VirtualDevice:
    """A device that speaks device API v1 through the fleet's shared HTTP client."""

    def __init__(
        self,
        device_id: str,
        credential: str,
        *,
        seed: int,
        behaviour: Behaviour,
        client: httpx.AsyncClient,
        stats: FleetStats,
    ) -> None:
        self.device_id = device_id
        self.behaviour = behaviour
        self.state = DeviceState.IDLE
        self.generation = -1
        self.reported: dict[str, Any] = {"generation": 0, "status": "idle"}
        self._desired_spec: dict[str, Any] = {}
        # What runs now: kept across a failed update, as a real agent keeps the last good bundle.
        self._running: dict[str, Any] = {}
        self._headers = {"Authorization": f"Bearer {credential}"}
        self._client = client
        self._stats = stats
        self._rng = random.Random(seed)
        self._metrics = MetricWalk(seed)
        self._facts = facts(device_id, random.Random(device_id))  # the same as at enrollment
        self._facts_sent = False
        self._watched = -1
        self._last_sample = 0.0
        self._wake = asyncio.Event()
        # Set while the last sync was answered: the watch waits for it, as the agent's does.
        self._online = asyncio.Event()
        self._reconnect = Reconnect(behaviour.interval, self._rng.random)
        self.synced_at: float | None = None  # time.monotonic() of the last answered sync
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._apply_task: asyncio.Task[None] | None = None
        self._peer = SessionPeer(
            str(client.base_url),
            device_id,
            self._headers,
            log_interval=behaviour.log_interval,
            exec_fail_rate=behaviour.exec_fail_rate,
            on_reboot=self.reboot,
        )
        self._boot = random.Random(f"{device_id} boot")
        self.boot_id = str(uuid.UUID(int=self._boot.getrandbits(128), version=4))
        self._answering: set[str] = set()

    @property
    def online(self) -> bool:
        """True while the device's last sync was answered (its watch waits for this)."""
        return self._online.is_set()

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        """The device's running tasks (sync loop, watch, apply)."""
        return set(self._tasks)

    def start(self, delay: float = 0.0) -> None:
        """Start syncing after `delay` seconds (ignored once stopped for good)."""
        if self.state in (DeviceState.RUNNING, DeviceState.STOPPED):
            return
        self.state = DeviceState.RUNNING
        self._facts_sent = False
        self._online.clear()
        self._spawn(self._run(delay))
        if self.reported["generation"] < self.generation:
            self._begin_apply(self.generation)  # it went offline halfway through an update

    def go_offline(self) -> None:
        """Drop every connection and stay silent until `start` is called again."""
        if self.state is DeviceState.RUNNING:
            self.state = DeviceState.OFFLINE
            self._cancel_all()

    def reboot(self) -> None:
        """Go silent for `reboot_time`, then come back with a new boot id, as after a reboot."""
        if self.state is not DeviceState.RUNNING:
            return
        self.go_offline()
        self._stats.reboots += 1
        asyncio.get_running_loop().call_later(self.behaviour.reboot_time, self._booted)

    def _booted(self) -> None:
        self.boot_id = str(uuid.UUID(int=self._boot.getrandbits(128), version=4))
        self.start()

    def stop(self) -> None:
        """Stop for good."""
        self.state = DeviceState.STOPPED
        self._cancel_all()

    def _cancel_all(self) -> None:
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self._stats.errors[f"internal: {type(error).__name__}"] += 1
            log.error("%s: simulator bug: %r", self.device_id, error, exc_info=error)

    async def _run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        self._last_sample = loop.time()
        while self.state is DeviceState.RUNNING:
            due = loop.time() + self.behaviour.interval
            retry = await self._sync()
            if retry is not None:
                self._online.clear()
                due = loop.time() + retry
            elif self.behaviour.watch and self._watch_task not in self._tasks:
                self._watch_task = self._spawn(self._watch_loop())
            await self._sleep_until(due)

    async def _sleep_until(self, due: float) -> None:
        delay = due - asyncio.get_running_loop().time()
        if delay > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
        self._wake.clear()

    def sync_body(self) -> bytes:
        """The next sync request (device API v1 `SyncRequest`), advancing the metrics."""
        now = asyncio.get_running_loop().time()
        body: dict[str, Any] = {
            "heartbeat": {**self._metrics.step(now - self._last_sample), "boot_id": self.boot_id},
            "reported": self.reported,
            "known_generation": self.generation,
        }
        self._last_sample = now
        if not self._facts_sent:
            body["facts"] = self._facts
        return orjson.dumps(body)

    async def _sync(self) -> float | None:
        """One sync; None when the server answered it, else the seconds until the next try."""
        body = self.sync_body()
        # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
        started = time.perf_counter()
        try:
            response = await self._client.post(
                SYNC_PATH,
                content=body,
                headers={**self._headers, "Content-Type": "application/json"},
            )
        except TRANSPORT_ERRORS as err:
            self._stats.sync_failed(error_kind(err))
            return self._reconnect.unreachable()
        elapsed = time.perf_counter() - started
        if response.status_code == 401:
            self._refused(problem_detail(response))
            return self._reconnect.refused(None)
        if response.status_code != 200:
            self._stats.sync_failed(f"HTTP {response.status_code}")
            return self._reconnect.refused(retry_after(response))
        try:
            answer = SyncResponse.model_validate_json(response.content)
        except ValidationError:
            self._stats.sync_failed("answer does not match device API v1")
            return self._reconnect.refused(None)
        self._stats.sync_succeeded(elapsed)
        self.synced_at = time.monotonic()
        self._reconnect.synced()
        self._online.set()
        self._facts_sent = True
        self._take(answer)
        return None

    def _take(self, answer: SyncResponse) -> None:
        if answer.status != "changed" or answer.desired is None:
            return
        self._take_desired(answer.desired)

    def _take_desired(self, desired: DesiredState) -> None:
        self.generation = desired.generation
        self._desired_spec = desired.spec
        self._watched = max(self._watched, desired.generation)
        # Generation 0 with an empty spec is every new device's starting point: nothing to do.
        if desired.generation > 0 or desired.spec:
            self._begin_apply(desired.generation)

    def _begin_apply(self, generation: int) -> None:
        if self._apply_task is not None:
            self._apply_task.cancel()  # a newer desired state replaces one still being applied
        self._apply_task = self._spawn(self._apply(generation))

    async def _apply(self, generation: int) -> None:
        await asyncio.sleep(self.behaviour.apply_time * self._rng.uniform(0.5, 1.5))
        if self._rng.random() < self.behaviour.fail_rate:
            reason = self._rng.choice(FAILURE_REASONS)
            self.reported = {
                "generation": generation,
                "status": "failed",
                "reason": reason,
                **failure_evidence(reason, self._desired_spec),
                **self._running,
            }
            self._stats.applies_failed += 1
        else:
            self._running = running_state(self._desired_spec, datetime.now(UTC), self._running)
            # Drained, a device runs nothing and says so, as the agent does.
            drained = self._desired_spec.get("kind") == DesiredKind.DRAINED.value
            status = "idle" if drained else "running"
            self.reported = {"generation": generation, "status": status, **self._running}
            self._stats.applies_ok += 1
        self._wake.set()  # report the outcome now, not an interval later

    async def _watch_loop(self) -> None:
        while self.state is DeviceState.RUNNING:
            # While syncs fail the watch waits for the next good one instead of probing too.
            await self._online.wait()
            if await self._watch_once():
                self._reconnect.watch_held()
            else:
                await asyncio.sleep(self._reconnect.watch_failed())

    async def _watch_once(self) -> bool:
        """One long-poll; False when it failed and the next should wait a little."""
        held = max(self.generation, self._watched)
        timeout = self.behaviour.watch_timeout
        params: dict[str, str | float] = {
            "generation": held,
            "timeout": timeout,
            "with_desired": "true",
        }
        if self.behaviour.answer_sessions:
            params["with_sessions"] = "true"
        try:
            response = await self._client.get(
                WATCH_PATH,
                params=params,
                headers=self._headers,
                timeout=timeout + WATCH_GRACE_SECONDS,
            )
        except TRANSPORT_ERRORS as err:
            self._stats.watch_failed(error_kind(err))
            return False
        if response.status_code == 401:
            self._refused(problem_detail(response))
            return False
        try:
            answer = WatchResponse.model_validate_json(response.content)
        except ValidationError:
            self._stats.watch_failed(f"HTTP {response.status_code}")
            return False
        self._take_sessions(answer.sessions)
        if answer.status == "changed" and answer.generation > held:
            self._watched = answer.generation
            self._stats.watch_wakeups += 1
            if answer.desired is not None and answer.desired.generation > self.generation:
                self._take_desired(answer.desired)  # as an agent does: act on it at once
            self._wake.set()
        return True

    def _take_sessions(self, offered: list[str] | None) -> None:
        # The server offers a session again if the device is slow to connect; answer it once.
        for session_id in offered or ():
            if session_id not in self._answering:
                self._answering.add(session_id)
                self._spawn(self._answer(session_id))

    async def _answer(self, session_id: str) -> None:
        try:
            await self._peer.answer(session_id, self.units(), self._stats)
        finally:
            self._answering.discard(session_id)

    def units(self) -> list[str]:
        """What `logs` can show: the agent's own log, then the running bundle's units."""
        items = self._running.get("items") or []
        return [AGENT_UNIT, *(str(item["name"]) for item in items)]

    def _refused(self, detail: str) -> None:
        if self.state is DeviceState.STOPPED:
            return
        log.warning("%s: the server refused this device (%s); it stops", self.device_id, detail)
        self._stats.stopped += 1
        self.stop()
