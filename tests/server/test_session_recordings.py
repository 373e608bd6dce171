"""Terminal recordings: an asciinema v2 cast of the output, capped, with our secrets blanked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from signalbeam.domain.errors import NotFound
from signalbeam.protocol.sessions import STDOUT, frame
from signalbeam.server.services.session_recordings import (
    MAX_RECORDING_BYTES,
    Recording,
    recording_path,
)
from tests.conftest import LiveServer
from tests.server.session_support import ScriptedDevice, attach, online_device, running
from tests.server.test_sessions import enable, events, user_headers


def cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    header, *lines = path.read_text().splitlines()
    return json.loads(header), [json.loads(line) for line in lines]


async def test_output_is_recorded_with_secrets_blanked(tmp_path: Path) -> None:
    recording = Recording(tmp_path / "r.cast", cols=120, rows=40, title="shell on pi-07")
    recording.output(b"$ cat token\r\nsbu_Z1xPDjEMnw1arBkCftXh-LnY9EsN\r\n")
    recording.output("caf\u00e9".encode()[:-1])  # a character split across two frames
    recording.output("caf\u00e9".encode()[-1:])
    size = await recording.close()
    header, lines = cast(tmp_path / "r.cast")
    assert (header["version"], header["width"], header["height"]) == (2, 120, 40)
    shown = "".join(text for _t, kind, text in lines if kind == "o")
    assert shown == "$ cat token\r\n[redacted]\r\ncaf\u00e9"
    assert size == (tmp_path / "r.cast").stat().st_size


async def test_a_recording_stops_at_its_cap_and_says_so(tmp_path: Path) -> None:
    recording = Recording(tmp_path / "r.cast", cols=80, rows=24, title="t")
    for _ in range(40):
        recording.output(b"y" * 60_000)
    await recording.close()
    assert (tmp_path / "r.cast").stat().st_size <= MAX_RECORDING_BYTES + 200
    _header, lines = cast(tmp_path / "r.cast")
    assert "recording stopped at 1 MiB" in lines[-1][2]


def test_a_session_id_cannot_leave_the_recordings_dir(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        recording_path(tmp_path, 1, "../../secret.key")


async def test_a_shell_session_can_be_replayed_by_operators(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    async def shell(opened: dict[str, Any], ws: ClientConnection) -> None:
        await ws.send(frame(STDOUT, b"pi@pi-07:~$ "))
        await ws.send(json.dumps({"type": "exit", "code": 0}))

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), shell)
    await enable(http)
    async with running(device):
        body = {"tty": True, "rows": 30, "cols": 100}
        created = (await http.post("/api/v1/devices/pi-07:exec", json=body)).json()
        assert created["kind"] == "shell"
        await attach(live_server.url, live_server.admin_token, created)
    ended = (await events(http, "session.ended"))[0]
    assert ended["data"]["recording_bytes"] > 0
    replay = await http.get(f"/api/v1/sessions/{created['session']}/recording")
    assert replay.status_code == 200
    assert replay.headers["content-type"].startswith("application/x-asciicast")
    header, *lines = replay.text.splitlines()
    assert json.loads(header)["width"] == 100
    assert json.loads(lines[0])[2] == "pi@pi-07:~$ "
    viewer = await user_headers(http, "vera", "viewer")
    path = f"/api/v1/sessions/{created['session']}/recording"
    assert (await http.get(path, headers=viewer)).status_code == 403
    missing = await http.get("/api/v1/sessions/AAAAAAAAAAAAAAAAAAAAAAAA/recording")
    assert missing.status_code == 404
    assert "only terminal sessions" in missing.json()["detail"]
