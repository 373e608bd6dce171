"""`signalbeam restart`, `restart-agent`, `reboot` and `drain` against a real server.

The device is scripted (tests/server/session_support.py); the CLI runs in a thread so the
device answers on the test's event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from signalbeam.protocol.sessions import control
from tests.cli.runner import Cli, Result
from tests.conftest import LiveServer, start_server, stop_server
from tests.server.session_support import BOUND, ScriptedDevice, running
from tests.test_bundles_api import BUNDLE

BOOT_A = "aaaa1111-0000-4000-8000-000000000001"
BOOT_B = "bbbb2222-0000-4000-8000-000000000002"
UNITS = [{"kind": "app", "name": "web", "state": "running"}]


@pytest.fixture
def quick_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A server that calls a device offline after 3 s of silence (sweeping 5 times a second)."""
    flags = ["--database-url", database_url, "--no-mdns"]
    flags += ["--sync-interval", "1s", "--offline-after-missed", "3"]
    server = start_server(tmp_path / "quick", flags, env={"SIGNALBEAM_SWEEP_INTERVAL": "PT0.2S"})
    yield server
    stop_server(server)


def admin_cli(tmp_path: Path, server: LiveServer) -> Cli:
    auth = {"SIGNALBEAM_SERVER": server.url, "SIGNALBEAM_TOKEN": server.admin_token}
    return Cli(tmp_path / "config", **auth)


async def run(cli: Cli, *args: str) -> Result:
    return await asyncio.to_thread(cli.run, *args)


@asynccontextmanager
async def admin(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


async def enrolled(http: httpx.AsyncClient, device_id: str, **labels: str) -> str:
    token = (await http.post("/api/v1/enrollment-tokens", json={"labels": labels})).json()
    body = {"token": token["token"], "device_id": device_id}
    credential: str = (await http.post("/api/device/v1/enroll", json=body)).json()["credential"]
    return credential


class Device:
    """A scripted device that also syncs: it reports what it is told to run, at once."""

    def __init__(self, http: httpx.AsyncClient, credential: str, boot_id: str) -> None:
        self.http, self.credential, self.boot_id = http, credential, boot_id
        self.generation = 0

    async def sync(self) -> None:
        body = {
            "heartbeat": {"boot_id": self.boot_id},
            "reported": {"generation": self.generation, "items": UNITS},
            "known_generation": self.generation,
        }
        headers = {"Authorization": f"Bearer {self.credential}"}
        answer = await self.http.post("/api/device/v1/sync", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        self.generation = answer.json()["generation"]

    async def beat(self) -> None:
        while True:
            await self.sync()
            await asyncio.sleep(0.3)

    async def answer(self, opened: dict[str, Any], ws: ClientConnection) -> None:
        """Restart and restart-agent are done; a reboot comes back with a new boot id."""
        action = opened["action"]
        detail = {"restart": f"restarted app {opened['unit']}", "reboot": "rebooting"}
        await ws.send(control("exit", code=0, detail=detail.get(action, "restarting the agent")))
        if action == "reboot":
            await ws.close()
            self.boot_id = BOOT_B
            await self.sync()


@asynccontextmanager
async def online(device: Device) -> AsyncIterator[None]:
    await device.sync()
    beat = asyncio.create_task(device.beat())
    try:
        async with running(
            ScriptedDevice(str(device.http.base_url), device.credential, device.answer)
        ):
            yield
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)


async def test_restart_plans_then_prints_each_device_and_skips_the_offline_one(
    quick_server: LiveServer, tmp_path: Path
) -> None:
    cli = admin_cli(tmp_path, quick_server)
    async with admin(quick_server) as http:
        device = Device(http, await enrolled(http, "pi-1", site="oslo"), BOOT_A)
        silent = await enrolled(http, "pi-2", site="oslo")
        await http.post(
            "/api/device/v1/sync", json={}, headers={"Authorization": f"Bearer {silent}"}
        )
        async with online(device):
            await until_offline(http, "pi-2")
            planned = await run(cli, "restart", "--selector", "site=oslo", "web", "--plan")
            ran = await run(cli, "restart", "--selector", "site=oslo", "web")
            one = await run(cli, "restart", "pi-1", "web", "--json")
            agent = await run(cli, "restart-agent", "pi-2")
            nothing = await run(cli, "restart", "pi-1")
    assert planned.code == 0, planned
    assert planned.out.startswith("restart would touch:")
    assert _row(planned.out, "pi-1")[:4] == ["pi-1", "planned", "restart", "web"]
    lines = ran.out.splitlines()
    assert ran.code == 0, ran
    assert lines[0] == "restart:"
    assert lines[1].startswith("pi-2  skipped  device pi-2 is offline (last seen ")
    assert lines[2] == "pi-1  done     restarted app web"
    assert lines[3] == "2 devices: 1 skipped, 1 done"
    assert json.loads(one.out)["devices"] == [
        {"device_id": "pi-1", "status": "done", "detail": "restarted app web"}
    ]
    # Nothing reached is a failure to the shell, with the reason on the line.
    assert agent.code == 1 and "pi-2  skipped  device pi-2 is offline" in agent.out
    assert nothing.error_line == "error: name devices, or give exactly one of --group or --selector"


async def until_offline(http: httpx.AsyncClient, device_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while (await http.get(f"/api/v1/devices/{device_id}")).json()["presence"] != "offline":
        assert asyncio.get_running_loop().time() < deadline, f"{device_id} never went offline"
        await asyncio.sleep(0.1)


def _row(table: str, device_id: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.startswith(device_id))


async def test_reboot_waits_until_the_device_is_back_with_a_new_boot_id(
    live_server: LiveServer, tmp_path: Path
) -> None:
    cli = admin_cli(tmp_path, live_server)
    async with admin(live_server) as http:
        device = Device(http, await enrolled(http, "pi-1"), BOOT_A)
        async with online(device):
            waited = await run(cli, "reboot", "pi-1", "--timeout", "30s")
            device.boot_id = BOOT_A
            quick = await run(cli, "reboot", "pi-1", "--no-wait", "--json")
            late = await _late_reboot(cli, device)
    assert waited.code == 0, waited
    lines = waited.out.splitlines()
    assert lines[1] == "pi-1  pending  rebooting; done once it reports a new boot id (now aaaa1111)"
    assert lines[2] == "Waiting up to 30s for 1 device(s) (--no-wait returns at once)..."
    assert lines[3].startswith("pi-1  done     back after ")
    assert lines[3].endswith(" with boot id bbbb2222")
    assert lines[4] == "1 device: 1 done"
    assert json.loads(quick.out)["devices"][0]["status"] == "pending"
    assert late.code == 1
    assert "pi-1  failed   not back with a new boot id within 2s (presence online)" in late.out


async def _late_reboot(cli: Cli, device: Device) -> Result:
    """A device that answers the reboot but never comes back with another boot id."""
    original = device.answer

    async def stays(opened: dict[str, Any], ws: ClientConnection) -> None:
        await ws.send(control("exit", code=0, detail="rebooting"))

    device.answer = stays  # type: ignore[method-assign]
    try:
        return await run(cli, "reboot", "pi-1", "--timeout", "2s")
    finally:
        device.answer = original  # type: ignore[method-assign]


async def test_drain_waits_for_the_units_to_stop_and_says_how_to_bring_it_back(
    live_server: LiveServer, tmp_path: Path
) -> None:
    cli = admin_cli(tmp_path, live_server)
    async with admin(live_server) as http:
        device = Device(http, await enrolled(http, "pi-1"), BOOT_A)
        assert (await http.post("/api/v1/bundles", json=BUNDLE)).status_code == 201
        path = "/api/v1/bundles/warehouse-monitor/versions/1.2.0/assign"
        assert (await http.post(path, json={"devices": ["pi-1"]})).status_code == 200
        async with online(device):
            planned = await run(cli, "drain", "pi-1", "--plan")
            drained = await run(cli, "drain", "pi-1")
            back = [await run(cli, "uncordon", "pi-1"), await run(cli, "rollback", "pi-1")]
    assert "cordon, then stop warehouse-monitor@1.2.0's units" in planned.out
    assert drained.code == 0, drained
    lines = drained.out.splitlines()
    assert lines[1].startswith("pi-1  pending  cordoned; stopping warehouse-monitor@1.2.0's units")
    assert lines[3] == "pi-1  done     units stopped"
    assert lines[-1].startswith("To bring a drained device back: signalbeam uncordon DEVICE, ")
    assert all(result.code == 0 for result in back)
    assert "back to warehouse-monitor@1.2.0" in back[1].out


class SlowDevice(Device):
    """A device that answers a restart only once the test lets it (pi-1 answers at once).

    A server that gave up the action when its operator left would close this connection
    first; the device notes that as `dropped`.
    """

    def __init__(self, http: httpx.AsyncClient, credential: str, release: asyncio.Event) -> None:
        super().__init__(http, credential, BOOT_A)
        self.release = release
        self.asked = asyncio.Event()
        self.dropped = asyncio.Event()

    async def answer(self, opened: dict[str, Any], ws: ClientConnection) -> None:
        self.asked.set()
        released = asyncio.ensure_future(self.release.wait())
        closed = asyncio.ensure_future(ws.wait_closed())
        await asyncio.wait({released, closed}, return_when=asyncio.FIRST_COMPLETED)
        released.cancel()
        if closed.done():
            self.dropped.set()
            return
        closed.cancel()
        await ws.send(control("exit", code=0, detail=f"restarted app {opened['unit']}"))


async def test_ctrl_c_stops_the_progress_but_every_asked_device_gets_its_result_recorded(
    quick_server: LiveServer, tmp_path: Path
) -> None:
    cli = admin_cli(tmp_path, quick_server)
    release, fast = asyncio.Event(), asyncio.Event()
    fast.set()
    async with admin(quick_server) as http, contextlib.AsyncExitStack() as stack:
        devices = [
            SlowDevice(
                http, await enrolled(http, f"pi-{n}", site="oslo"), fast if n == 1 else release
            )
            for n in range(1, 5)
        ]
        for device in devices:
            await stack.enter_async_context(online(device))
        process = cli.start("restart", "--selector", "site=oslo", "web")
        assert await asyncio.to_thread(process.stdout.readline) == "restart:\n"  # type: ignore[union-attr]
        first = await asyncio.to_thread(process.stdout.readline)  # type: ignore[union-attr]
        assert first == "pi-1  done     restarted app web\n"
        for device in devices:
            await asyncio.wait_for(device.asked.wait(), BOUND)
        process.send_signal(signal.SIGINT)  # Ctrl-C while three devices are still working
        out, err = await asyncio.to_thread(process.communicate, timeout=BOUND)
        # The operator is gone; no device's connection may be dropped for it (this waits
        # out a short window on purpose: a server that gave up would drop them at once).
        drops = [asyncio.ensure_future(d.dropped.wait()) for d in devices]
        done, _ = await asyncio.wait(drops, timeout=1.0)
        for task in drops:
            task.cancel()
        assert not done, "the server dropped the action when the operator left"
        release.set()
        events = await _recorded(http, "device.unit_restarted", 4)
    assert process.returncode == 130, (out, err)
    assert "pi-2" not in out and "Traceback" not in err
    assert err.splitlines() == [
        "interrupted: the restart goes on on the server and the devices; every device's result "
        "is recorded: signalbeam events ls --type device.unit_restarted "
        "--type device.action_failed (or each device's page)"
    ]
    assert sorted(e["message"] for e in events) == [
        f"web on pi-{n} restarted by admin" for n in range(1, 5)
    ]


async def _recorded(http: httpx.AsyncClient, kind: str, count: int) -> list[dict[str, Any]]:
    """The events of `kind` once there are `count` of them (fails after BOUND seconds)."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while True:
        items: list[dict[str, Any]] = (
            await http.get("/api/v1/events", params={"type": kind})
        ).json()["items"]
        if len(items) >= count:
            return items
        assert asyncio.get_running_loop().time() < deadline, f"only {len(items)} {kind} events"
        await asyncio.sleep(0.1)
