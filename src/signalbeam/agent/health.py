"""Health gates: wait until a freshly started unit passes its check, or say why it did not."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from signalbeam.agent.spec import AppSpec, ContainerSpec, HealthCheck
from signalbeam.agent.units import UnitDriver, UnitError, UnitState, UnitStatus

PROBE_SECONDS = 5.0

Observe = Callable[[], Awaitable[UnitStatus | None]]


@dataclass
class Attempt:
    """The outcome of one probe: passed, or a short reason it did not."""

    ok: bool
    detail: str = ""


class HealthGate:
    """Waits for one unit's health check, failing fast when the unit dies meanwhile."""

    def __init__(
        self,
        spec: ContainerSpec | AppSpec,
        driver: UnitDriver[ContainerSpec] | UnitDriver[AppSpec],
        observe: Observe,
        http: httpx.AsyncClient,
    ) -> None:
        self.spec = spec
        self.check: HealthCheck = spec.health_check
        self.driver = driver
        self.observe = observe
        self.http = http

    async def wait(self) -> None:
        """Return once the check passes; raise `UnitError` with the reason otherwise."""
        deadline = time.monotonic() + self.check.timeout
        first = await self._status()
        restarts = first.restart_count
        last = Attempt(ok=False, detail="not checked yet")
        while True:
            status = await self._status()
            self._fail_if_dead(status, restarts)
            last = await self._probe(status)
            if last.ok:
                return
            if time.monotonic() >= deadline:
                raise UnitError(
                    f"health check failed: {self.spec.name}: {last.detail} "
                    f"after {self.check.timeout:g}s"
                )
            await asyncio.sleep(min(self.check.interval, max(0.05, deadline - time.monotonic())))

    async def _status(self) -> UnitStatus:
        status = await self.observe()
        if status is None:
            raise UnitError(f"{self.spec.kind} {self.spec.name} disappeared while starting")
        return status

    def _fail_if_dead(self, status: UnitStatus, restarts: int) -> None:
        # A unit that exits while we wait will not become healthy by waiting longer.
        if status.state in (UnitState.RUNNING, UnitState.STARTING) and (
            status.restart_count <= restarts
        ):
            return
        code = f" with code {status.exit_code}" if status.exit_code is not None else ""
        said = f": {status.last_error}" if status.last_error else ""
        raise UnitError(f"{self.spec.kind} {self.spec.name} exited{code} while starting{said}")

    async def _probe(self, status: UnitStatus) -> Attempt:
        check = self.check
        if check.http is not None:
            return await self._http(check.http)
        if check.tcp is not None:
            return await _tcp(check.tcp)
        if check.exec_ is not None:
            return await self._exec(check.exec_)
        return _running_for(status, check.running_for or 0.0)

    async def _http(self, url: str) -> Attempt:
        try:
            response = await self.http.get(url, timeout=min(PROBE_SECONDS, self.check.timeout))
        except httpx.HTTPError as err:
            return Attempt(ok=False, detail=f"{url} {describe_http_error(err)}")
        if 200 <= response.status_code < 300:
            return Attempt(ok=True)
        return Attempt(ok=False, detail=f"{url} returned {response.status_code}")

    async def _exec(self, argv: list[str]) -> Attempt:
        code, output = await self.driver.exec(
            self.spec.name, argv, min(PROBE_SECONDS * 2, self.check.timeout)
        )
        if code == 0:
            return Attempt(ok=True)
        tail = output.strip().splitlines()[-1:] if output.strip() else []
        said = f": {tail[0][:200]}" if tail else ""
        return Attempt(ok=False, detail=f"`{' '.join(argv)}` exited with {code}{said}")


async def _tcp(target: int | str) -> Attempt:
    host, port = ("127.0.0.1", target) if isinstance(target, int) else _split(target)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_SECONDS)
    except (OSError, TimeoutError) as err:
        reason = "timed out" if isinstance(err, TimeoutError) else _os_reason(err)
        return Attempt(ok=False, detail=f"tcp {host}:{port} {reason}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Attempt(ok=True)


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _running_for(status: UnitStatus, seconds: float) -> Attempt:
    if status.state is not UnitState.RUNNING or status.since is None:
        return Attempt(ok=False, detail="not running yet")
    up = (datetime.now(UTC) - status.since).total_seconds()
    if up >= seconds:
        return Attempt(ok=True)
    return Attempt(ok=False, detail=f"up for only {up:.1f}s of {seconds:g}s")


def _os_reason(err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "unreachable (connection refused)"
    return f"unreachable ({err.strerror or err})"


def describe_http_error(err: httpx.HTTPError) -> str:
    """`unreachable (connection refused)`, `timed out`, ...: what a person needs to know."""
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    if isinstance(err, httpx.ConnectError):
        text = str(err).lower()
        if "refused" in text:
            return "unreachable (connection refused)"
        return f"unreachable ({err})"
    return f"failed ({type(err).__name__}: {err})"
