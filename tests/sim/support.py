"""Helpers for simulator tests: polling with a deadline, admin calls, fleet configs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from signalbeam.sim.device import Behaviour
from signalbeam.sim.fleet import FleetConfig
from tests.helpers import eventually as eventually  # shared; re-exported for sim tests


@asynccontextmanager
async def admin_api(url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the management API, authenticated as the first admin."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        yield client


async def enrollment_token(api: httpx.AsyncClient, labels: dict[str, str]) -> str:
    """A new enrollment token with these default labels."""
    response = await api.post("/api/v1/enrollment-tokens", json={"labels": labels})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def devices(api: httpx.AsyncClient, status: str | None = None) -> list[dict[str, Any]]:
    """Every device of the tenant (up to 1000), optionally with one presence."""
    params: dict[str, str | int] = {"limit": 1000}
    if status is not None:
        params["status"] = status
    response = await api.get("/api/v1/devices", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def fleet_config(
    url: str, token: str, count: int, state_file: Path, **behaviour: Any
) -> FleetConfig:
    """A small, fast, reproducible fleet for tests whose first syncs all happen within 0.5 s."""
    return FleetConfig(
        server=url,
        token=token,
        devices=count,
        behaviour=Behaviour(**{"interval": 1.0, **behaviour}),
        state_file=state_file,
        seed=1,
        ramp=0.5,
    )
