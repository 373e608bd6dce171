"""The device page's Recent sessions list and the recording its Replay button plays, without a browser.

A finished session is written the way the relay writes one (its two events and its cast, through
the real Recording); tests/server/test_session_recordings.py proves a real shell session gives
exactly that, and tests/web/test_device_sessions.py replays one in chromium.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signalbeam.domain.model import EventType
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import tenants
from signalbeam.server.services import users as user_service
from signalbeam.server.services.session_recordings import Recording, recording_path
from tests.helpers import new_device
from tests.server.test_sessions import user_headers
from tests.web.test_session import sign_in

SCREEN = b"pi@pi-07:~$ uptime\r\n 12:00 up 3 days\r\n"


async def finished_session(
    runtime: Runtime, token: str, device_id: str, kind: str, screen: bytes = b""
) -> str:
    """A session that ran and ended on `device_id`, recorded when it is a shell; its id."""
    actor = await user_service.authenticate(runtime, token)
    session_id = uuid.uuid4().hex
    shell = kind == "shell"
    summary: dict[str, Any] = {
        "session": session_id,
        "kind": kind,
        "unit": None,
        "command": None if shell else "uptime -p",
        "tty": shell,
    }
    result: dict[str, Any] = {
        "exit_code": 0,
        "error": None,
        "bytes_to_device": 7,
        "bytes_from_device": len(screen),
        "seconds": 1.5,
    }
    if shell:
        path = recording_path(runtime.settings.data_dir, actor.tenant_id, session_id)
        recording = Recording(path, cols=80, rows=24, title=f"shell on {device_id}")
        recording.output(screen)
        result["recording_bytes"] = await recording.close()
    async with runtime.unit_of_work(actor) as uow:
        device = await uow.devices.get(device_id)
        uow.record(EventType.SESSION_STARTED, "started", device=device, data=summary)
        uow.record(EventType.SESSION_ENDED, "ended", device=device, data={**summary, **result})
        await uow.commit()
    return session_id


@asynccontextmanager
async def browser_signed_in(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client signed in to the dashboard with `token`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await sign_in(client, token)).status_code == 303
        yield client


@pytest.fixture
async def web(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard as the first admin."""
    async with browser_signed_in(app, admin_token) as client:
        yield client


async def test_the_list_shows_a_finished_shell_and_replays_its_recording(
    web: httpx.AsyncClient,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    runtime: Runtime,
    admin_token: str,
) -> None:
    await new_device(client, anon, "pi-07")
    exec_id = await finished_session(runtime, admin_token, "pi-07", "exec")
    shell_id = await finished_session(runtime, admin_token, "pi-07", "shell", SCREEN)
    page = await web.get("/devices/pi-07")
    assert 'hx-get="/devices/pi-07/sessions"' in page.text and 'id="replay"' in page.text
    listed = await web.get("/devices/pi-07/sessions")
    assert listed.status_code == 200
    rows = listed.text.split("<tr data-session=")[1:]
    assert [row.split('"')[1] for row in rows] == [shell_id, exec_id]  # newest first
    shell_row, exec_row = rows
    assert "a shell" in shell_row and "admin" in shell_row and "exit 0" in shell_row
    assert f'data-replay="/devices/pi-07/sessions/{shell_id}/recording"' in shell_row
    assert "uptime -p" in exec_row and "Replay" not in exec_row  # an exec is not recorded
    replay = await web.get(f"/devices/pi-07/sessions/{shell_id}/recording")
    assert replay.status_code == 200
    assert replay.headers["content-type"].startswith("application/x-asciicast")
    assert "12:00 up 3 days" in replay.text


async def test_viewers_see_the_list_but_no_recording(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    runtime: Runtime,
    admin_token: str,
) -> None:
    await new_device(client, anon, "pi-07")
    shell_id = await finished_session(runtime, admin_token, "pi-07", "shell", SCREEN)
    viewer = (await user_headers(client, "vera", "viewer"))["Authorization"].split()[1]
    async with browser_signed_in(app, viewer) as web:
        listed = await web.get("/devices/pi-07/sessions")
        assert shell_id in listed.text and "a shell" in listed.text
        assert "Replay" not in listed.text and "data-replay" not in listed.text
        assert 'id="replay"' not in (await web.get("/devices/pi-07")).text
        refused = await web.get(f"/devices/pi-07/sessions/{shell_id}/recording")
        assert refused.status_code == 403
        assert "needs the operator role" in refused.json()["detail"]
        assert "12:00 up 3 days" not in refused.text


async def test_a_recording_is_not_found_from_another_tenant_or_another_device(
    app: FastAPI,
    web: httpx.AsyncClient,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    runtime: Runtime,
    admin_token: str,
) -> None:
    await new_device(client, anon, "pi-07")
    await new_device(client, anon, "pi-08")
    shell_id = await finished_session(runtime, admin_token, "pi-07", "shell", SCREEN)
    path = f"/sessions/{shell_id}/recording"
    # Ours, but asked for under another device of ours.
    assert (await web.get("/devices/pi-08" + path)).status_code == 404
    other = await tenants.create(runtime, "acme", "Acme", "boss")
    async with browser_signed_in(app, other.admin_token) as theirs:
        their_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {other.admin_token}"},
        )
        async with their_client:
            await new_device(their_client, anon, "acme-pi")
        for device in ("pi-07", "acme-pi"):
            answer = await theirs.get(f"/devices/{device}{path}")
            assert answer.status_code == 404, device
            assert "12:00 up 3 days" not in answer.text
        assert (await theirs.get("/devices/pi-07/sessions")).status_code == 404
        assert shell_id not in (await theirs.get("/devices/acme-pi/sessions")).text
