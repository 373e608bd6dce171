"""The sessions bench's moving parts: simulator processes, an operator, CPU and RSS readings."""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import Server
from signalbeam.protocol.sessions import unframe
from signalbeam.sim.stats import LatencyRecorder

# Presence allows three missed syncs, so a 60 s interval keeps every device online for the
# whole run while the fleet's own sync load stays small next to the sessions measured.
SYNC_INTERVAL = "60s"
# Sessions are offered on the watch, which answers at once then; holding each watch the server's
# longest halves what 10,000 watching devices cost the simulator (about 1 ms CPU a request).
WATCH_TIMEOUT = "60s"
LOG_INTERVAL = "0.2s"
STEP_SECONDS = 60.0
STOP_SECONDS = 60.0


def ws_url(server: Server, path: str) -> str:
    """The WebSocket URL of a management API path."""
    return f"ws://{server.host}:{server.port}{path}"


@dataclass
class Simulator:
    """A `signalbeam sim` process: devices that watch and answer sessions."""

    server: Server
    token: str
    devices: int
    prefix: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    # More `signalbeam sim` options (a later one wins: `--interval 10s` over the default).
    extra: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The selector of this simulator's devices."""
        return f"fleet={self.prefix.strip('-')}"

    def start(self, ramp: float) -> int:
        """Start the process; its pid."""
        command = [sys.executable, "-m", "signalbeam", "sim", "--server", self.server.url]
        command += ["--token", self.token, "--devices", str(self.devices), "--watch"]
        command += ["--watch-timeout", WATCH_TIMEOUT]
        command += ["--interval", SYNC_INTERVAL, "--ramp", f"{ramp:g}s", "--fail-rate", "0"]
        command += ["--log-interval", LOG_INTERVAL, "--prefix", self.prefix, "--json"]
        command += [
            "--labels",
            self.label,
            "--state-file",
            str(self.workdir / f"{self.prefix}.json"),
            *self.extra,
        ]
        out = (self.workdir / f"{self.prefix}sim.out").open("wb")
        err = (self.workdir / f"{self.prefix}sim.err").open("wb")
        with out, err:
            # Our own interpreter and arguments, not outside input.
            self.process = subprocess.Popen(command, stdout=out, stderr=err)  # noqa: S603
        return self.process.pid

    def stop(self) -> None:
        """Ctrl-C it and keep the summary it prints."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = (self.workdir / f"{self.prefix}sim.out").read_text(errors="replace")
        start = text.find("{")
        if start >= 0:
            self.summary = json.loads(text[start:])

    async def enrolled(self, timeout: float) -> float:
        """Wait until its devices are enrolled (it says so on stderr); time.monotonic() then."""
        began = time.monotonic()
        while "simulating " not in self._stderr():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self.process.returncode}")
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"{self.devices} devices did not enroll within {timeout:g}s")
            await asyncio.sleep(0.5)
        return time.monotonic()

    def _stderr(self) -> str:
        return (self.workdir / f"{self.prefix}sim.err").read_text(errors="replace")

    def tail(self) -> str:
        """The end of its stderr, for a failure message."""
        return self._stderr()[-1500:]


class Meter:
    """CPU of a set of processes over a window (100 = one core), from their CPU time."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self._processes = {role: [psutil.Process(p) for p in ps] for role, ps in pids.items()}
        self._began = time.monotonic()
        self._cpu = self._times()

    def _times(self) -> dict[str, float]:
        return {
            role: sum(sum(p.cpu_times()[:2]) for p in processes)
            for role, processes in self._processes.items()
        }

    def read(self) -> dict[str, float]:
        """Mean CPU percent of each role since the meter started."""
        seconds = time.monotonic() - self._began
        now = self._times()
        return {
            f"{role}_cpu_percent": round(100 * (now[role] - self._cpu[role]) / seconds, 1)
            for role in now
        }


def rss(pid: int, samples: int = 5, gap: float = 0.2) -> int:
    """The median of a few RSS readings of a process (bytes)."""
    process = psutil.Process(pid)
    values = []
    for index in range(samples):
        if index:
            time.sleep(gap)
        values.append(process.memory_info().rss)
    return int(statistics.median(values))


async def online(api: httpx.AsyncClient, selector: str, count: int, timeout: float) -> float:
    """Wait until `count` devices of `selector` are online; seconds it took."""
    began = time.monotonic()
    params: dict[str, str | int] = {"selector": selector, "status": "online", "limit": 1}
    while time.monotonic() - began < timeout:
        response = await api.get("/api/v1/devices", params=params)
        if response.status_code == 200 and response.json()["total"] >= count:
            return time.monotonic() - began
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{count} devices ({selector}) were not online within {timeout:g}s")


@dataclass
class Operator:
    """Asks for sessions through the management API and reads them like `signalbeam exec`."""

    server: Server
    api: httpx.AsyncClient
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The admin's API token."""
        return {"Authorization": f"Bearer {self.server.admin_token}"}

    def failed(self, kind: str) -> None:
        """Count a session that did not end as expected."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def ask(self, device_id: str, kind: str, body: dict[str, Any]) -> str:
        """POST the session; its stream path."""
        response = await self.api.post(f"/api/v1/devices/{device_id}:{kind}", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"{kind} on {device_id}: HTTP {response.status_code}")
        stream: str = response.json()["stream"]
        return stream

    def attach(self, stream: str) -> connect:
        """The operator's WebSocket of a session (an async context manager)."""
        return connect(ws_url(self.server, stream), additional_headers=self.headers, proxy=None)

    async def exec_round_trip(self, device_id: str) -> float | None:
        """Seconds from asking to run `uptime` to its `exit`; None if it did not exit 0."""
        began = time.perf_counter()
        try:
            stream = await self.ask(device_id, "exec", {"command": ["uptime"]})
            async with self.attach(stream) as ws:
                code = await asyncio.wait_for(_exit_code(ws), STEP_SECONDS)
        except Exception as err:  # a bench counts failures instead of stopping at the first
            self.failed(type(err).__name__)
            return None
        if code != 0:
            self.failed(f"exit {code}")
            return None
        return time.perf_counter() - began

    async def action_round_trip(self, device_id: str) -> float | None:
        """Seconds for POST :restart-agent to come back done (the server waits for the device)."""
        began = time.perf_counter()
        try:
            response = await self.api.post(f"/api/v1/devices/{device_id}:restart-agent")
            [result] = response.raise_for_status().json()["devices"]
        except Exception as err:  # counted, as for exec
            self.failed(f"action: {type(err).__name__}")
            return None
        if result["status"] != "done":
            self.failed(f"action {result['status']}")
            return None
        return time.perf_counter() - began

    async def bulk_action(self, selector: str) -> tuple[float, int]:
        """One restart-agent over a selector: seconds for every answer, and how many were done."""
        began = time.perf_counter()
        body = {"action": "restart-agent", "selector": selector}
        response = await self.api.post("/api/v1/actions", json=body, timeout=STEP_SECONDS * 5)
        devices = response.raise_for_status().json()["devices"]
        return time.perf_counter() - began, sum(d["status"] == "done" for d in devices)


async def _exit_code(ws: ClientConnection) -> int | None:
    async for message in ws:
        if isinstance(message, str):
            control = json.loads(message)
            if control["type"] in ("exit", "error"):
                code = control.get("code")
                return code if isinstance(code, int) else None
    return None


async def sequential(operator: Operator, ids: list[str]) -> LatencyRecorder:
    """One exec after another."""
    recorder = LatencyRecorder()
    for device_id in ids:
        seconds = await operator.exec_round_trip(device_id)
        if seconds is not None:
            recorder.record(seconds)
    return recorder


async def concurrent(operator: Operator, ids: list[str], width: int) -> LatencyRecorder:
    """Execs with `width` in flight at once."""
    recorder, limit = LatencyRecorder(), asyncio.Semaphore(width)

    async def one(device_id: str) -> None:
        async with limit:
            seconds = await operator.exec_round_trip(device_id)
        if seconds is not None:
            recorder.record(seconds)

    await asyncio.gather(*(one(device_id) for device_id in ids))
    return recorder


@dataclass
class Follows:
    """K followed logs held open at once; each line's delay from its stamp to the operator.

    Only lines written after every follow is flowing count: a session's first lines wait
    while the server records its start, and that backlog is start-up, not following.
    """

    operator: Operator
    expected: int
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    flowing: int = 0
    all_flowing: asyncio.Event = field(default_factory=asyncio.Event)
    measure_from: float | None = None

    async def follow(self, device_id: str, stop: asyncio.Event) -> None:
        """Follow the agent log of one device until `stop`."""
        body = {"unit": "agent", "tail": 0, "follow": True}
        try:
            stream = await self.operator.ask(device_id, "logs", body)
            async with self.operator.attach(stream) as ws:
                reader = asyncio.ensure_future(self._read(ws))
                await stop.wait()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        except Exception as err:  # counted; the others keep following
            self.operator.failed(f"follow: {type(err).__name__}")

    def start_measuring(self) -> None:
        """Count lines written from now on."""
        self.measure_from = time.time()

    def stop_measuring(self) -> None:
        """Count no more lines."""
        self.measure_from = None

    async def _read(self, ws: ClientConnection) -> None:
        first = True
        async for message in ws:
            if isinstance(message, str):
                continue  # started, then exit or error at the end
            shown = time.time()
            if first:
                first = False
                self._count_flowing()
            _, data = unframe(message)
            self._record(shown, data.decode())

    def _record(self, shown: float, text: str) -> None:
        since = self.measure_from
        for line in text.splitlines():
            stamp = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
            if since is not None and stamp >= since:
                self.latency.record(shown - stamp)

    def _count_flowing(self) -> None:
        self.flowing += 1
        if self.flowing >= self.expected:
            self.all_flowing.set()
