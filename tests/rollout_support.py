"""Virtual devices for rollout tests: they speak the real device API and report like agents.

Each device applies a new desired bundle at its next sync and reports it running, or, when
told to fail, reports `failed` with a reason while it keeps running its last good version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.helpers import enroll, enrollment_token, sync

BUNDLE = "door-sensor"


def bundle(version: str) -> dict[str, Any]:
    """A small native-app bundle at `version` (never run: the devices here are virtual)."""
    return {
        "name": BUNDLE,
        "version": version,
        "apps": [
            {
                "name": "reader",
                "artifact": {
                    "url": f"http://127.0.0.1:9/reader-{version}.tar.gz",
                    "sha256": "9f2c3a0e1b4d5c6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e41",
                },
                "command": ["./reader"],
            }
        ],
    }


@dataclass
class VirtualDevice:
    """One device: what it runs, the generation it knows, and what it reports next."""

    device_id: str
    credential: str
    fail_with: str | None = None
    known: int = 0
    status: str = "idle"
    reason: str | None = None
    running: tuple[str | None, str | None] = (None, None)
    syncs: int = 0
    # With `fail_with`: the last lines of the unit "reader" that a failed report carries.
    failure_log: list[str] = field(default_factory=list)
    events_sent: int = 0

    def report(self) -> dict[str, Any]:
        bundle_name, version = self.running
        report: dict[str, Any] = {
            "generation": self.known,
            "status": self.status,
            "reason": self.reason,
            "bundle": bundle_name,
            "version": version,
        }
        if self.status == "failed" and self.failure_log:
            report |= {"failed_unit": "reader", "failure_log": self.failure_log}
        return report

    async def sync(self, http: httpx.AsyncClient) -> None:
        """Report, and take on whatever desired state the answer carries."""
        response = await sync(
            http, self.credential, known_generation=self.known, reported=self.report()
        )
        assert response.status_code == 200, response.text
        self.syncs += 1
        if self.status == "failed" and self.failure_log and not self.events_sent:
            await self.send_failure_event(http)
        answer = response.json()
        if answer["status"] == "changed":
            self.take(answer["desired"]["generation"], answer["desired"]["spec"])

    async def send_failure_event(self, http: httpx.AsyncClient) -> None:
        """Deliver the failed update's event as the agent's outbox does, lines and all, so
        the rollout still shows them once a rollback has the device report otherwise."""
        report = self.report()
        self.events_sent += 1
        event = {
            "seq": self.events_sent,
            "type": "agent.update_failed",
            "message": f"update failed: {self.reason}",
            "data": {k: report[k] for k in ("generation", "reason", "failed_unit", "failure_log")},
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        response = await http.post(
            "/api/device/v1/telemetry",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {self.credential}"},
        )
        assert response.status_code == 200, response.text

    def take(self, generation: int, spec: dict[str, Any]) -> None:
        self.known = generation
        wanted = spec.get("bundle") or {}
        ref = (wanted.get("name"), wanted.get("version"))
        if not spec:
            self.running, self.status, self.reason = (None, None), "idle", None
        elif self.fail_with is not None and ref != self.running:
            self.status, self.reason = "failed", self.fail_with
        else:
            self.running, self.status, self.reason = ref, "running", None


@dataclass
class Fleet:
    """Virtual devices that sync together, over and over, until a condition holds."""

    devices: list[VirtualDevice] = field(default_factory=list)

    def __getitem__(self, device_id: str) -> VirtualDevice:
        return next(device for device in self.devices if device.device_id == device_id)

    async def sync(self, http: httpx.AsyncClient) -> None:
        await asyncio.gather(*(device.sync(http) for device in self.devices))

    async def until(
        self,
        http: httpx.AsyncClient,
        check: Callable[[], Awaitable[Any]],
        what: str,
        timeout: float = 60.0,
    ) -> Any:
        """Keep the devices syncing until `check` returns something truthy (fail at the deadline)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            await self.sync(http)
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


async def enroll_fleet(
    admin: httpx.AsyncClient, http: httpx.AsyncClient, count: int, labels: dict[str, str]
) -> Fleet:
    """`count` devices dev-00, dev-01... with these labels, each synced once (online)."""
    token = await enrollment_token(admin, labels=labels)
    fleet = Fleet()
    for index in range(count):
        device_id = f"dev-{index:02d}"
        fleet.devices.append(VirtualDevice(device_id, await enroll(http, token, device_id)))
    await fleet.sync(http)
    return fleet


async def push(admin: httpx.AsyncClient, version: str) -> None:
    response = await admin.post("/api/v1/bundles", json=bundle(version))
    assert response.status_code in (200, 201), response.text


async def rollout(admin: httpx.AsyncClient, rollout_id: int) -> dict[str, Any]:
    response = await admin.get(f"/api/v1/rollouts/{rollout_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status_is(
    admin: httpx.AsyncClient, rollout_id: int, *statuses: str
) -> Callable[[], Awaitable[Any]]:
    """A check for `Fleet.until`: the rollout's detail once it is in one of `statuses`."""

    async def check() -> dict[str, Any] | None:
        body = await rollout(admin, rollout_id)
        return body if body["status"] in statuses else None

    return check
