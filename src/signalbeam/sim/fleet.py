"""A fleet of virtual devices in one process: enrollment, one shared HTTP client, stats."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from signalbeam import __version__
from signalbeam.protocol.device_v1 import EnrollResponse
from signalbeam.sim import identities
from signalbeam.sim.device import (
    Behaviour,
    DeviceState,
    VirtualDevice,
    error_kind,
    facts,
    problem_detail,
)
from signalbeam.sim.reconnect import CONNECT_SECONDS
from signalbeam.sim.stats import FleetStats

log = logging.getLogger("signalbeam.sim")

ENROLL_PATH = "/api/device/v1/enroll"
ENROLL_ATTEMPTS = 3
# Below uvicorn's 5 s keep-alive, so the client never reuses a connection the server is closing.
KEEPALIVE_SECONDS = 4.0
# httpcore's pool does work quadratic in its connection count on every request (see
# encode/httpcore#1035): one pool holding thousands of watches saturates a core on
# bookkeeping alone. Devices therefore share clients in small groups instead: at 50 (a pool of
# about 100 connections) 10,000 watching devices spent 38 % of the simulator's samples in
# httpcore's `_assign_requests_to_connections` (py-spy), and more once requests queued.
DEVICES_PER_CLIENT = 10
JSON_HEADERS = {"Content-Type": "application/json"}


class SimError(Exception):
    """The fleet cannot run; the message says why and what to do."""


@dataclass(frozen=True)
class FleetConfig:
    """What to simulate and against which server."""

    server: str
    token: str
    devices: int
    behaviour: Behaviour = field(default_factory=Behaviour)
    labels: Mapping[str, str] = field(default_factory=dict)
    prefix: str = "sim-"
    state_file: Path | None = None
    seed: int = 0
    enroll_concurrency: int = 50
    request_timeout: float = 30.0
    ramp: float | None = None  # seconds over which first syncs spread; default one interval

    @property
    def server_url(self) -> str:
        """The server URL without a trailing slash."""
        return self.server.rstrip("/")

    @property
    def state_path(self) -> Path:
        """The state file, defaulting to one per server under `./.signalbeam-sim/`."""
        return self.state_file or identities.default_state_file(self.server_url)

    def device_id(self, index: int) -> str:
        """`{prefix}{index:05d}`."""
        return f"{self.prefix}{index:05d}"

    def device_ids(self) -> list[str]:
        """The id of every device, in order."""
        return [self.device_id(index) for index in range(self.devices)]


class Fleet:
    """Owns the virtual devices, their shared `httpx.AsyncClient` and the fleet's stats."""

    def __init__(
        self, config: FleetConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport` replaces the network, e.g. to drive an app in-process in tests."""
        if config.devices < 1:
            raise SimError("--devices must be at least 1")
        self.config = config
        self._transport = transport
        self.stats = FleetStats()
        self.devices: dict[str, VirtualDevice] = {}
        self._rng = random.Random(config.seed)
        self._clients: list[httpx.AsyncClient] = []
        # One TLS context for every client: each would otherwise load the CA bundle itself.
        self._tls = httpx.create_ssl_context()
        self._toggled: list[str] = []
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._presence_at_stop: dict[str, int] | None = None

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _new_client(self, devices: int) -> httpx.AsyncClient:
        """A keep-alive HTTP/1.1 client with a pool sized for `devices` (and their watches)."""
        size = devices * (2 if self.config.behaviour.watch else 1) + 4
        limits = httpx.Limits(
            max_connections=size, max_keepalive_connections=size, keepalive_expiry=KEEPALIVE_SECONDS
        )
        return httpx.AsyncClient(
            base_url=self.config.server_url,
            limits=limits,
            timeout=httpx.Timeout(self.config.request_timeout, connect=CONNECT_SECONDS),
            headers={"User-Agent": f"signalbeam-sim/{__version__}"},
            transport=self._transport,
            verify=self._tls,
        )

    async def start(self) -> None:
        """Enroll the devices not in the state file yet, then start every device's loop."""
        count = self.config.devices
        shards = max(1, -(-count // DEVICES_PER_CLIENT))
        self._clients = [self._new_client(-(-count // shards)) for _ in range(shards)]
        self._started_at = time.monotonic()
        known = await asyncio.to_thread(
            identities.load, self.config.state_path, self.config.server_url
        )
        wanted = self.config.device_ids()
        enrolled = await self._enroll_missing(wanted, known)
        self.stats.reused = sum(1 for device_id in wanted if device_id in known)
        self.stats.enrolled = len(enrolled)
        for index, device_id in enumerate(wanted):
            credential = known.get(device_id) or enrolled.get(device_id)
            if credential is not None:
                self.devices[device_id] = self._device(device_id, credential, index)
        self.stats.devices = len(self.devices)
        if not self.devices:
            raise SimError(
                f"no device could enroll with {self.config.server_url} "
                f"({self._enroll_problems()}); is the server running at that URL?"
            )
        self._report_enroll_failures(len(wanted) - len(self.devices))
        self._start_devices()

    def _client_for(self, index: int) -> httpx.AsyncClient:
        return self._clients[index % len(self._clients)]

    def _device(self, device_id: str, credential: str, index: int) -> VirtualDevice:
        return VirtualDevice(
            device_id,
            credential,
            seed=self.config.seed * 1_000_003 + index,
            behaviour=self.config.behaviour,
            client=self._client_for(index),
            stats=self.stats,
        )

    def _start_devices(self) -> None:
        # Spread the first syncs evenly over one interval so the load is flat, not a spike.
        ramp = self.config.ramp
        spread = self.config.behaviour.interval if ramp is None else ramp
        count = len(self.devices)
        for slot, device in enumerate(self.devices.values()):
            device.start(delay=(slot + self._rng.random()) * spread / count)

    async def stop(self) -> None:
        """Stop every device, wait for their tasks and close the HTTP client (idempotent)."""
        tasks = [task for device in self.devices.values() for task in device.tasks]
        if self._presence_at_stop is None:
            self._presence_at_stop = self._presence()
        for device in self.devices.values():
            if device.state is not DeviceState.STOPPED:
                device.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        clients, self._clients = self._clients, []
        await asyncio.gather(*(client.aclose() for client in clients))
        if self._started_at is not None and self._stopped_at is None:
            self._stopped_at = time.monotonic()

    async def _enroll_missing(self, wanted: list[str], known: dict[str, str]) -> dict[str, str]:
        missing = [index for index, device_id in enumerate(wanted) if device_id not in known]
        enrolled: dict[str, str] = {}
        if not missing:
            return enrolled
        limit = asyncio.Semaphore(self.config.enroll_concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                for index in missing:
                    group.create_task(self._enroll(index, limit, enrolled))
        except* SimError as errors:
            raise errors.exceptions[0] from None
        finally:
            # Keep whatever did enroll, even when interrupted, so a rerun does not repeat it.
            if enrolled:
                merged = {**known, **enrolled}
                await asyncio.to_thread(
                    identities.save, self.config.state_path, self.config.server_url, merged
                )
        return enrolled

    def _enroll_problems(self) -> str:
        return ", ".join(
            f"{count} x {kind.removeprefix('enroll: ')}"
            for kind, count in self.stats.errors.items()
            if kind.startswith("enroll: ")
        )

    def _report_enroll_failures(self, failed: int) -> None:
        if not failed:
            return
        problems = self._enroll_problems()
        log.warning(
            "%d devices could not enroll with %s after %d attempts each (%s); "
            "the rest run, and a restart enrolls the missing ones",
            failed,
            self.config.server_url,
            ENROLL_ATTEMPTS,
            problems,
        )

    def _enroll_body(self, device_id: str) -> bytes:
        return orjson.dumps(
            {
                "token": self.config.token,
                "device_id": device_id,
                "facts": facts(device_id, random.Random(device_id)),
                "labels": dict(self.config.labels),
            }
        )

    async def _enroll(self, index: int, limit: asyncio.Semaphore, enrolled: dict[str, str]) -> None:
        device_id = self.config.device_id(index)
        client = self._client_for(index)
        body = self._enroll_body(device_id)
        problem = "no attempt"
        async with limit:
            for attempt in range(ENROLL_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(0.5 * 2**attempt)
                try:
                    response = await client.post(ENROLL_PATH, content=body, headers=JSON_HEADERS)
                except httpx.HTTPError as err:
                    problem = error_kind(err)
                    continue
                credential = _credential(device_id, response)
                if credential is not None:
                    enrolled[device_id] = credential
                    return
                problem = f"HTTP {response.status_code}"
        self.stats.errors[f"enroll: {problem}"] += 1

    def _select(self, which: float | Iterable[str], state: DeviceState) -> list[VirtualDevice]:
        candidates = [d for d in self.devices.values() if d.state is state]
        if isinstance(which, str):
            which = [which]
        if isinstance(which, float | int):
            if not 0 <= which <= 1:
                raise ValueError(f"a fraction of devices must be between 0 and 1, not {which}")
            return self._rng.sample(candidates, round(len(candidates) * which))
        ids = set(which)
        return [d for d in candidates if d.device_id in ids]

    def set_offline(self, which: float | Iterable[str]) -> list[str]:
        """Take a fraction of the online devices (or these ids) offline; returns their ids."""
        chosen = self._select(which, DeviceState.RUNNING)
        for device in chosen:
            device.go_offline()
        return [device.device_id for device in chosen]

    def set_online(self, which: float | Iterable[str] = 1.0) -> list[str]:
        """Bring offline devices (all by default) back; they sync within a tenth of an interval."""
        chosen = self._select(which, DeviceState.OFFLINE)
        spread = self.config.behaviour.interval / 10
        for device in chosen:
            device.start(delay=self._rng.random() * spread)
        return [device.device_id for device in chosen]

    def toggle_offline(self, fraction: float) -> str:
        """Take `fraction` of the devices offline, or bring back the ones taken last time."""
        if self._toggled:
            back = self.set_online(self._toggled)
            self._toggled = []
            return f"{len(back)} devices back online"
        self._toggled = self.set_offline(fraction)
        return f"{len(self._toggled)} devices offline"

    def count(self, state: DeviceState) -> int:
        """How many devices are in `state`."""
        return sum(1 for device in self.devices.values() if device.state is state)

    def _presence(self) -> dict[str, int]:
        return {
            "online": self.count(DeviceState.RUNNING),
            "offline": self.count(DeviceState.OFFLINE),
        }

    def summary(self) -> dict[str, Any]:
        """The fleet's stats, how long it ran, and how many devices were online (now or at stop)."""
        end = self._stopped_at or time.monotonic()
        elapsed = end - self._started_at if self._started_at is not None else 0.0
        return {
            **self.stats.summary(),
            **(self._presence_at_stop or self._presence()),
            "elapsed_seconds": round(elapsed, 1),
            "syncs_per_second": round(self.stats.syncs_ok / elapsed, 1) if elapsed else 0.0,
        }


def _credential(device_id: str, response: httpx.Response) -> str | None:
    """The credential from an enroll answer; raises when retrying cannot help."""
    if response.status_code == 200:
        try:
            return EnrollResponse.model_validate_json(response.content).credential
        except ValidationError as err:
            raise SimError(f"enroll answer for {device_id} does not match device API v1") from err
    if response.status_code in (400, 401, 403, 404, 422):
        detail = problem_detail(response)
        raise SimError(f"the server refused to enroll {device_id}: {detail}")
    return None
