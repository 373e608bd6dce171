"""`signalbeam logs`, `exec` and `shell` against a real server and a scripted device."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from signalbeam.protocol.sessions import STDERR, STDIN, STDOUT, control, frame, unframe
from tests.cli.runner import COMMAND, FACTS, Cli, Result, Watcher
from tests.cli.terminal_support import drive_shell
from tests.conftest import LiveServer, start_server, stop_server
from tests.server.session_support import (
    BOUND,
    ScriptedDevice,
    online_device,
    running,
    ws_url,
)

HEARTBEAT = {"heartbeat": {"cpu_percent": 10, "memory_percent": 40, "disks": []}}


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """The live server's management API as its first admin."""
    async with _admin(live_server) as client:
        yield client


@pytest.fixture
def admin_cli(tmp_path: Path, live_server: LiveServer) -> Cli:
    """The CLI pointed at the live server as its first admin."""
    return _cli(tmp_path, live_server)


def _cli(tmp_path: Path, server: LiveServer) -> Cli:
    auth = {"SIGNALBEAM_SERVER": server.url, "SIGNALBEAM_TOKEN": server.admin_token}
    return Cli(tmp_path / "config", **auth)


def _admin(server: LiveServer) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)


async def _enable(http: httpx.AsyncClient) -> None:
    response = await http.put("/api/v1/remote-access", json={"enabled": True, "exec_allow": []})
    assert response.status_code == 200, response.text


async def _run(cli: Cli, *args: str, stdin: str = "") -> Result:
    # In a thread: the scripted device answers on this event loop meanwhile.
    return await asyncio.to_thread(cli.run, *args, stdin=stdin)


async def _stdin_until_eof(ws: ClientConnection) -> bytes:
    got = b""
    async for message in ws:
        if isinstance(message, bytes):
            got += unframe(message)[1]
        elif json.loads(message)["type"] == "eof":
            return got
    raise AssertionError("the stream closed before eof")


async def three_lines_exit_3(opened: dict[str, Any], ws: ClientConnection) -> None:
    """A command that prints on both streams, in turn, and fails with 3."""
    for stream, data in ((STDOUT, b"one\n"), (STDERR, b"warn\n"), (STDOUT, b"two\n")):
        await ws.send(frame(stream, data))
    await ws.send(control("exit", code=3))


async def test_exec_streams_both_outputs_in_order_and_exits_with_the_remote_code(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), three_lines_exit_3)
    await _enable(http)
    async with running(device):
        apart = await _run(admin_cli, "exec", "pi-07", "--", "check", "--deep")
        merged = await asyncio.to_thread(_merged, admin_cli, "exec", "pi-07", "--", "check")
    assert (apart.code, apart.out, apart.err) == (3, "one\ntwo\n", "warn\n")
    assert merged.returncode == 3
    assert merged.stdout == b"one\nwarn\ntwo\n"
    assert [o["command"] for o in device.opened] == [["check", "--deep"], ["check"]]
    assert device.opened[0]["tty"] is False


def _merged(cli: Cli, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run with stderr on the same pipe as stdout, to see the order of everything printed."""
    return subprocess.run(
        [*COMMAND, *args],
        input=b"",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli.environment(),
        timeout=60,
        check=False,
    )


async def test_exec_forwards_stdin_then_eof(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    async def echo_stdin(opened: dict[str, Any], ws: ClientConnection) -> None:
        got = await _stdin_until_eof(ws)
        await ws.send(frame(STDOUT, b"got: " + got))
        await ws.send(control("exit", code=0))

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), echo_stdin)
    await _enable(http)
    async with running(device):
        result = await _run(admin_cli, "exec", "pi-07", "--", "cat", stdin="hello\nworld\n")
    assert (result.code, result.out, result.err) == (0, "got: hello\nworld\n", "")


async def test_refusals_are_one_line_before_any_stream(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    await online_device(http, "pi-07")
    off, unknown, no_command = await asyncio.to_thread(
        admin_cli.run_all,
        ["exec", "pi-07", "--", "reboot"],
        ["exec", "pi-99", "--", "id"],
        ["exec", "pi-07"],
    )
    assert "remote access is off for this tenant" in off.error_line
    assert "`signalbeam remote-access enable`" in off.error_line
    assert off.code == 1
    assert "signalbeam devices ls" in unknown.error_line
    assert "give the command after --" in no_command.error_line


async def test_a_device_that_drops_mid_session_exits_255(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    async def vanish(opened: dict[str, Any], ws: ClientConnection) -> None:
        await ws.send(frame(STDOUT, b"half a li"))
        # Gone without an exit frame: the link dropped.

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), vanish)
    await _enable(http)
    async with running(device):
        result = await _run(admin_cli, "exec", "pi-07", "--", "top")
    assert result.code == 255
    assert result.out == "half a li"
    assert result.error_line == "error: connection to pi-07 lost"


async def list_units(opened: dict[str, Any], ws: ClientConnection) -> None:
    """Logs as a device shows them: the unit list without a unit, else two lines."""
    if opened["unit"] is None:
        await ws.send(frame(STDOUT, b"agent\nmonitor\n"))
    else:
        await ws.send(frame(STDOUT, b"started\n"))
        await ws.send(frame(STDERR, b"disk almost full\n"))
    await ws.send(control("exit", code=0))


async def test_logs_lists_units_and_prints_a_units_lines(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), list_units)
    async with running(device):
        units = await _run(admin_cli, "logs", "pi-07")
        lines = await _run(
            admin_cli, "logs", "pi-07", "monitor", "--tail", "5", "--since", "1h", "--grep", "d"
        )
    assert (units.code, units.out, units.err) == (0, "agent\nmonitor\n", "")
    assert (lines.code, lines.out, lines.err) == (0, "started\n", "disk almost full\n")
    listed, shown = device.opened
    assert (listed["kind"], listed["unit"], listed["tail"], listed["follow"]) == (
        "logs",
        None,
        200,
        False,
    )
    assert (shown["unit"], shown["tail"], shown["since_seconds"], shown["grep"]) == (
        "monitor",
        5,
        3600,
        "d",
    )


async def test_ctrl_c_ends_a_follow_with_exit_0(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    closed = asyncio.Event()

    async def follow(opened: dict[str, Any], ws: ClientConnection) -> None:
        await ws.send(frame(STDOUT, b"line one\n"))
        try:
            await ws.recv()
        except ConnectionClosed:
            closed.set()  # the operator left, so the server ended the device's side too

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), follow)
    async with running(device):
        with Watcher(admin_cli.start("logs", "pi-07", "monitor", "-f")) as watcher:
            await asyncio.to_thread(watcher.out.wait_for, "line one")
            assert await asyncio.to_thread(watcher.interrupt) == 0
            await asyncio.wait_for(closed.wait(), BOUND)
    assert device.opened[0]["follow"] is True
    assert "Traceback" not in "\n".join(watcher.err.seen)


async def test_another_websocket_client_reads_an_operator_stream(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    """websocket-client, written by none of us, attaches to the stream the CLI uses."""
    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"))
    await _enable(http)
    async with running(device):
        created = await http.post("/api/v1/devices/pi-07:exec", json={"command": ["uptime"]})
        assert created.status_code == 201, created.text
        url = ws_url(live_server.url, created.json()["stream"])
        seen = await asyncio.to_thread(_read_with_websocket_client, url, live_server.admin_token)
    assert json.loads(seen[0])["type"] == "started"
    assert seen[1:3] == [frame(STDOUT, b"uptime"), frame(STDERR, b"done\n")]
    assert isinstance(seen[3], str) and json.loads(seen[3]) == {"type": "exit", "code": 0}


def _read_with_websocket_client(url: str, token: str) -> list[str | bytes]:
    connection = websocket.create_connection(
        url, header=[f"Authorization: Bearer {token}"], timeout=BOUND
    )
    seen: list[str | bytes] = []
    try:
        while not seen or not (isinstance(seen[-1], str) and '"exit"' in seen[-1]):
            opcode, data = connection.recv_data()
            seen.append(data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data)
    finally:
        connection.close()
    return seen


def test_shell_refuses_without_a_terminal(cli: Cli) -> None:
    result = cli.run("shell", "pi-07")
    assert result.error_line == "error: shell needs a terminal; use `signalbeam exec` for commands"


async def test_shell_is_raw_sends_resizes_and_exits_with_the_remote_status(
    live_server: LiveServer, http: httpx.AsyncClient, admin_cli: Cli
) -> None:
    async def terminal(opened: dict[str, Any], ws: ClientConnection) -> None:
        await ws.send(frame(STDOUT, b"ready\r\n"))
        resize = json.loads(await ws.recv())
        await ws.send(frame(STDOUT, f"size {resize['rows']}x{resize['cols']}\r\n".encode()))
        keys = b""
        while not keys.endswith(b"\x04"):
            message = await ws.recv()
            assert isinstance(message, bytes) and message[0] == STDIN
            keys += message[1:]
        await ws.send(frame(STDOUT, f"keys {keys!r}\r\n".encode()))
        await ws.send(control("exit", code=7))

    device = ScriptedDevice(live_server.url, await online_device(http, "pi-07"), terminal)
    await _enable(http)
    async with running(device):
        code, screen, restored = await asyncio.to_thread(drive_shell, admin_cli)
    opened = device.opened[0]
    assert (opened["kind"], opened["tty"], opened["rows"], opened["cols"]) == (
        "shell",
        True,
        30,
        100,
    )
    assert "size 40x120" in screen
    # Ctrl-C and Ctrl-D reached the device as bytes instead of stopping the CLI.
    assert "keys b'ls\\x03\\x04'" in screen
    assert code == 7
    assert restored, "the terminal was left in raw mode"


@pytest.fixture
def quick_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A server that calls a device offline after 3 s of silence (sweeping 5 times a second)."""
    flags = ["--database-url", database_url, "--no-mdns"]
    flags += ["--sync-interval", "1s", "--offline-after-missed", "3"]
    server = start_server(tmp_path / "quick", flags, env={"SIGNALBEAM_SWEEP_INTERVAL": "PT0.2S"})
    yield server
    stop_server(server)


async def _keep_syncing(http: httpx.AsyncClient, credential: str) -> None:
    # A device's heartbeat, so it stays online while the silent one goes offline.
    headers = {"Authorization": f"Bearer {credential}"}
    while True:
        await http.post("/api/device/v1/sync", json=HEARTBEAT, headers=headers)
        await asyncio.sleep(0.3)


async def _until_offline(http: httpx.AsyncClient, device_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while (await http.get(f"/api/v1/devices/{device_id}")).json()["presence"] != "offline":
        assert asyncio.get_running_loop().time() < deadline, f"{device_id} never went offline"
        await asyncio.sleep(0.1)


async def uptime_or_false(opened: dict[str, Any], ws: ClientConnection) -> None:
    """`uptime` prints and succeeds; `false` fails with 3."""
    await ws.send(frame(STDOUT, b"up 3 days\nload 0.1\n"))
    await ws.send(control("exit", code=3 if opened["command"] == ["false"] else 0))


async def test_fan_out_runs_where_it_can_and_skips_offline_devices(
    quick_server: LiveServer, tmp_path: Path
) -> None:
    cli = _cli(tmp_path, quick_server)
    async with _admin(quick_server) as http:
        await _enable(http)
        token = await http.post("/api/v1/enrollment-tokens", json={"labels": {"env": "prod"}})
        secret = token.json()["token"]
        online = await _enrolled(http, secret, "pi-07")
        await _enrolled(http, secret, "pi-09")
        device = ScriptedDevice(quick_server.url, online, uptime_or_false)
        heartbeat = asyncio.create_task(_keep_syncing(http, online))
        try:
            await _until_offline(http, "pi-09")
            async with running(device):
                table = await _run(cli, "exec", "--selector", "env=prod", "--", "uptime")
                nobody = await _run(cli, "exec", "--selector", "env=dev", "--", "uptime")
                failed = await _run(cli, "exec", "--selector", "env=prod", "--json", "--", "false")
                single = await _run(cli, "exec", "pi-09", "--", "uptime")
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
    assert table.code == 0, table
    header, reached, skipped = (line.split() for line in table.out.splitlines())
    assert header == ["DEVICE", "RESULT", "OUTPUT"]
    assert reached == ["pi-07", "exit", "0", "up", "3", "days"]
    assert skipped[:2] == ["pi-09", "skipped"]
    assert "device pi-09 is offline (last seen " in table.out
    assert nobody.error_line == (
        "error: no devices match --selector env=dev; see `signalbeam devices ls`"
    )
    runs = json.loads(failed.out)
    assert failed.code == 1
    assert runs[0] == {
        "device": "pi-07",
        "status": "exited",
        "exit_code": 3,
        "stdout": "up 3 days\nload 0.1\n",
        "stderr": "",
        "error": None,
    }
    assert (runs[1]["device"], runs[1]["status"], runs[1]["exit_code"]) == (
        "pi-09",
        "skipped",
        None,
    )
    assert "is offline" in runs[1]["error"]
    assert "device pi-09 is offline (last seen" in single.error_line


async def _enrolled(http: httpx.AsyncClient, token: str, device_id: str) -> str:
    body = {"token": token, "device_id": device_id, "facts": {**FACTS, "hostname": device_id}}
    credential: str = (await http.post("/api/device/v1/enroll", json=body)).json()["credential"]
    headers = {"Authorization": f"Bearer {credential}"}
    synced = await http.post("/api/device/v1/sync", json=HEARTBEAT, headers=headers)
    assert synced.status_code == 200, synced.text
    return credential
