"""Small helpers tests share: enrolling devices and syncing them through the real API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


async def enrollment_token(client: httpx.AsyncClient, **body: Any) -> str:
    """Create an enrollment token as the client's user and return its secret."""
    response = await client.post("/api/v1/enrollment-tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def enroll(anon: httpx.AsyncClient, token: str, device_id: str, **extra: Any) -> str:
    """Enroll a device and return its credential."""
    body = {
        "token": token,
        "device_id": device_id,
        "facts": {
            "hostname": device_id,
            "os": "Debian 12",
            "arch": "aarch64",
            "agent_version": "0.1.0",
        },
        **extra,
    }
    response = await anon.post("/api/device/v1/enroll", json=body)
    assert response.status_code == 200, response.text
    credential: str = response.json()["credential"]
    return credential


async def sync(anon: httpx.AsyncClient, credential: str, **body: Any) -> httpx.Response:
    """One sync as the device holding `credential`."""
    body.setdefault(
        "heartbeat",
        {
            "cpu_percent": 12.5,
            "memory_percent": 40.0,
            "disks": [{"mount": "/", "percent": 55.0}],
            "uptime_seconds": 100,
        },
    )
    return await anon.post(
        "/api/device/v1/sync", json=body, headers={"Authorization": f"Bearer {credential}"}
    )


async def new_device(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    device_id: str,
    labels: dict[str, str] | None = None,
) -> str:
    """Enroll a device with its own token, sync it once so it is online, return its credential."""
    token = await enrollment_token(client, labels=labels or {})
    credential = await enroll(anon, token, device_id)
    response = await sync(anon, credential)
    assert response.status_code == 200, response.text
    return credential


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0
) -> T:
    """Poll `check` until it returns something truthy; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last: {last!r})")
