"""Sessions with a real agent process: logs, exec, a PTY shell, copy, forward, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from signalbeam.protocol.sessions import STDIN, frame
from tests.agent.support import Admin, AgentProcess, Agents, agent_env, register, wait_until_async
from tests.conftest import LiveServer
from tests.server.session_support import BOUND, Transcript, read_all, ws_url


def start_agent(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, **settings: str
) -> AgentProcess:
    state = tmp_path / "agent"
    token = admin.enrollment_token()
    done = register(state, token, "--server", fast_server.url, "--device-id", "pi-07")
    assert done.returncode == 0, done.stderr
    env = agent_env(interval="1s", **settings)
    return agents.start(state, env)


async def online(admin: Admin) -> None:
    await wait_until_async(
        lambda: admin.device("pi-07").get("presence") == "online", 30, "pi-07 online"
    )


async def session(
    server: LiveServer, path: str, body: dict[str, Any], send: list[bytes | str] | None = None
) -> Transcript:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        created = await http.post(f"/api/v1/devices/pi-07:{path}", json=body)
        assert created.status_code == 201, created.text
    stream = ws_url(server.url, created.json()["stream"])
    async with connect(stream, additional_headers=headers) as ws:
        for message in send or []:
            await ws.send(message)
        return await asyncio.wait_for(read_all(ws), BOUND)


@pytest.fixture
def remote_on(admin: Admin) -> None:
    response = admin.http.put("/api/v1/remote-access", json={"enabled": True})
    assert response.status_code == 200


async def test_exec_streams_output_takes_stdin_and_exits_with_the_remote_code(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, remote_access="true")
    await online(admin)
    script = "read line; echo got:$line; echo oops >&2; exit 3"
    stdin: list[bytes | str] = [frame(STDIN, b"hello\n"), json.dumps({"type": "eof"})]
    seen = await session(fast_server, "exec", {"command": ["sh", "-c", script]}, stdin)
    assert (seen.stdout, seen.stderr) == (b"got:hello\n", b"oops\n")
    assert seen.last == {"type": "exit", "code": 3}
    missing = await session(fast_server, "exec", {"command": ["no-such-command"]})
    assert missing.last["code"] == 127 and b"command not found" in missing.stderr
    slow = await session(fast_server, "exec", {"command": ["sleep", "30"], "timeout": "1s"})
    assert slow.last["code"] == 124 and b"timed out after 1s" in slow.stderr


async def test_the_device_refuses_exec_unless_its_config_allows_it(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    agent = start_agent(fast_server, admin, agents, tmp_path)
    await online(admin)
    seen = await session(fast_server, "exec", {"command": ["id"]})
    detail = seen.last["detail"]
    assert detail.startswith("refused by the device: remote access is off in its agent config")
    assert str(agent.state_dir / "agent.toml") in detail
    # Logs are not remote access: the agent's own log is readable all the same.
    units = await session(fast_server, "logs", {})
    assert units.stdout.decode().splitlines() == ["agent"]
    logs = await session(fast_server, "logs", {"unit": "agent", "grep": "starting"})
    assert b"signalbeam-agent" in logs.stdout and b"starting" in logs.stdout
    unknown = await session(fast_server, "logs", {"unit": "nginx"})
    assert (
        unknown.last["detail"]
        == "refused by the device: no unit 'nginx' on this device; units: agent"
    )


async def test_a_dropped_session_leaves_no_process_behind(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, remote_access="true")
    await online(admin)
    marker = tmp_path / "pids"
    script = f"sleep 1000 & echo $$ $! > {marker}; echo ready; wait"
    headers = {"Authorization": f"Bearer {fast_server.admin_token}"}
    async with httpx.AsyncClient(base_url=fast_server.url, headers=headers) as http:
        created = (
            await http.post("/api/v1/devices/pi-07:exec", json={"command": ["sh", "-c", script]})
        ).json()
    async with connect(
        ws_url(fast_server.url, created["stream"]), additional_headers=headers
    ) as ws:
        message: str | bytes = ""
        while not (isinstance(message, bytes) and b"ready" in message):
            message = await asyncio.wait_for(ws.recv(), BOUND)
    # The operator hung up: the shell and its background sleep must both be gone.
    pids = [int(p) for p in marker.read_text().split()]

    def gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            return False
        return True

    await wait_until_async(gone, 20, "the session's processes to end")


async def test_a_shell_is_a_real_terminal_that_resizes(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, remote_access="true")
    await online(admin)
    typed: list[bytes | str] = [
        json.dumps({"type": "resize", "rows": 33, "cols": 111}),
        frame(STDIN, b"tty; stty size; exit 7\n"),
    ]
    seen = await session(fast_server, "exec", {"tty": True, "command": ["/bin/sh"]}, typed)
    assert b"/dev/pts/" in seen.stdout
    assert b"33 111" in seen.stdout
    assert seen.last == {"type": "exit", "code": 7}


async def test_copy_puts_and_gets_files_checked_by_sha256(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, remote_access="true")
    await online(admin)
    target = tmp_path / "kiosk.conf"
    content = os.urandom(200_000)
    digest = hashlib.sha256(content).hexdigest()
    body = {"path": str(target), "direction": "put", "size": len(content), "sha256": digest}
    chunks: list[bytes | str] = [
        frame(STDIN, content[i : i + 60_000]) for i in range(0, len(content), 60_000)
    ]
    put = await session(fast_server, "copy", body, [*chunks, json.dumps({"type": "eof"})])
    assert put.last == {"type": "exit", "code": 0, "sha256": digest, "size": len(content)}
    assert target.read_bytes() == content
    got = await session(fast_server, "copy", {"path": str(target), "direction": "get"})
    assert got.stdout == content and got.last["sha256"] == digest
    # A wrong digest keeps the old file and leaves no partial one behind.
    wrong = {**body, "sha256": "0" * 64}
    bad = await session(fast_server, "copy", wrong, [*chunks, json.dumps({"type": "eof"})])
    assert "nothing was written" in bad.last["detail"]
    assert [p.name for p in target.parent.glob("*kiosk*")] == ["kiosk.conf"]


async def test_forward_reaches_a_port_on_the_device(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path, remote_on: None
) -> None:
    start_agent(fast_server, admin, agents, tmp_path, remote_access="true")
    await online(admin)

    async def kiosk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nkiosk says hi to " + request.split()[1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(kiosk, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        seen = await session(
            fast_server, "forward", {"port": port}, [frame(STDIN, b"GET /menu HTTP/1.0\r\n\r\n")]
        )
    assert seen.stdout.endswith(b"kiosk says hi to /menu")
    assert seen.last == {"type": "exit", "code": 0}
