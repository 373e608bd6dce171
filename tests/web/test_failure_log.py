"""A failed update's last lines on the device page, in the activity feed and in the rollout.

Pages are fetched as a signed-in browser would (cookie and all), from the real app with
its rollout engine running; the device speaks the real device API.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.server.settings import ServerSettings
from tests.helpers import enroll, enrollment_token, sync
from tests.rollout_support import BUNDLE, push

T = TypeVar("T")
UNIT = "reader"
LINES = [
    "reader 2.0.0 starting",
    "opening /dev/ttyUSB0 <script>alert('owned')</script>",
    "Traceback (most recent call last):",
    '  File "reader.py", line 12, in <module>',
    "PermissionError: [Errno 13] Permission denied: '/dev/ttyUSB0'",
]
REASON = f"{BUNDLE}@2.0.0 failed: app {UNIT} exited with code 1 while starting"
FULL_REASON = f"{REASON}; rolled back to {BUNDLE}@1.0.0"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ServerSettings:
    """The usual test settings with a brisk rollout engine."""
    return ServerSettings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        mdns=False,
        rollout_interval=timedelta(seconds=0.2),
    )


@pytest.fixture
async def browser_like(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client, signed in to the dashboard as the first admin."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token: str = app.state.startup.admin_token
        page = await client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "token": token, "next": "/"}
        assert (await client.post("/login", data=form)).status_code == 303
        yield client


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if value := await check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


class Device:
    """One device reporting like an agent: syncs, and the events its outbox delivers."""

    def __init__(self, http: httpx.AsyncClient, credential: str) -> None:
        self.http = http
        self.credential = credential
        self.generation = 0

    async def report(self, **reported: Any) -> dict[str, Any]:
        body = {"generation": self.generation, "bundle": BUNDLE, **reported}
        response = await sync(
            self.http, self.credential, known_generation=self.generation, reported=body
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def takes(self, generation: int) -> None:
        """Sync until the server hands out `generation`."""

        async def handed() -> bool:
            answer = await self.report(status="running", version="1.0.0")
            return int(answer["generation"]) >= generation

        await eventually(handed, f"desired generation {generation}")
        self.generation = generation

    async def fails(self) -> None:
        """Report the failed update, then deliver its event, as the agent does."""
        failed = {"reason": FULL_REASON, "failed_unit": UNIT, "failure_log": LINES}
        await self.report(status="failed", version="1.0.0", **failed)
        data = {"generation": self.generation, "bundle": BUNDLE, "version": "1.0.0", **failed}
        event = {
            "seq": 1,
            "type": "agent.update_failed",
            "message": f"update failed: {FULL_REASON}",
            "data": data,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        response = await self.http.post(
            "/api/device/v1/telemetry",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {self.credential}"},
        )
        assert response.status_code == 200, response.text


def shown_lines(page: str) -> list[str]:
    """The lines of the first failure log on a page, as a browser shows them."""
    assert "failure-log" in page, "no failure log on the page"
    found = re.search(r"<pre[^>]*>(.*?)</pre>", page[page.index("failure-log") :], re.DOTALL)
    assert found is not None, page
    return html.unescape(found.group(1)).split("\n")


async def test_a_failed_updates_last_lines_show_where_the_failure_does(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, browser_like: httpx.AsyncClient
) -> None:
    device = Device(anon, await enroll(anon, await enrollment_token(client), "lab-1"))
    await push(client, "1.0.0")
    await push(client, "2.0.0")
    assigned = await client.post(
        f"/api/v1/bundles/{BUNDLE}/versions/1.0.0/assign", json={"devices": ["lab-1"]}
    )
    assert assigned.status_code == 200, assigned.text
    await device.takes(1)
    body = {"bundle": BUNDLE, "version": "2.0.0", "devices": ["lab-1"], "soak": "0s"}
    created = await client.post("/api/v1/rollouts", json=body)
    assert created.status_code == 201, created.text
    await device.takes(2)
    await device.fails()

    # The device page: the lines under the reason, as text (the <script> is not markup).
    page = (await browser_like.get("/devices/lab-1")).text
    assert html.escape(FULL_REASON, quote=False) in page
    assert shown_lines(page) == LINES
    assert "<script>alert" not in page
    assert f"Last 5 lines of {UNIT}" in page
    assert shown_lines((await browser_like.get("/devices/lab-1/state")).text) == LINES
    reported = (await client.get("/api/v1/devices/lab-1")).json()["reported"]
    assert (reported["failed_unit"], reported["failure_log"]) == (UNIT, LINES)

    # The event, in the activity feed.
    feed = (await browser_like.get("/activity")).text
    assert f"Last 5 lines of {UNIT}" in feed and shown_lines(feed) == LINES

    # The rollout's per-device view, before and after the rollback made the device report
    # `running` again (the lines then come from the event).
    async def failed_in_rollout() -> dict[str, Any] | None:
        detail = (await client.get(f"/api/v1/rollouts/{created.json()['id']}")).json()
        return detail if detail["status"] in ("halted", "rolled_back") else None

    detail = await eventually(failed_in_rollout, "the rollout to stop on the failure")
    [entry] = detail["devices"]
    assert (entry["status"], entry["failed_unit"], entry["failure_log"]) == ("failed", UNIT, LINES)
    progress = f"/rollouts/{detail['id']}/progress"
    assert shown_lines((await browser_like.get(progress)).text) == LINES
    await device.takes(3)  # the rollback: 1.0.0 again
    await device.report(status="running", version="1.0.0")
    after = (await browser_like.get(progress)).text
    assert shown_lines(after) == LINES
    assert (
        "failure-log"
        not in (await browser_like.get("/devices/lab-1/state")).text.split('id="activity-h"')[0]
    ), "a device that runs again shows no failure panel"
