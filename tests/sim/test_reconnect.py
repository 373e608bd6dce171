"""Simulated devices retry a lost server the way the real agent does."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx

from signalbeam.sim.fleet import Fleet
from signalbeam.sim.reconnect import MIN_RETRY_SECONDS, Reconnect, retry_after
from tests.conftest import start_server, stop_server
from tests.sim.support import admin_api, enrollment_token, eventually, fleet_config


def test_a_silent_server_is_probed_about_once_an_interval_however_long_it_stays_silent() -> None:
    highest, lowest = Reconnect(10.0, draw=lambda: 0.999), Reconnect(10.0, draw=lambda: 0.0)
    probes = [highest.unreachable() for _ in range(50)]
    assert all(9.99 <= delay < 10.0 for delay in probes), "no exponential growth while silent"
    assert [lowest.unreachable() for _ in range(50)] == [5.0] * 50, "jitter over [I/2, I)"


def test_error_answers_back_off_exponentially_and_honour_retry_after() -> None:
    reconnect = Reconnect(10.0, draw=lambda: 0.5)
    delays = [reconnect.refused(None) for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0], "doubling up to a 60 s cap"
    assert reconnect.refused(45.0) == 45.0, "Retry-After beats a shorter backoff"
    reconnect.synced()
    assert reconnect.refused(None) == 0.5, "an answered sync starts afresh"
    assert Reconnect(10.0, draw=lambda: 0.0).refused(None) == MIN_RETRY_SECONDS


def test_retry_after_takes_seconds_and_ignores_dates_and_nonsense() -> None:
    def header(value: str) -> float | None:
        return retry_after(httpx.Response(503, headers={"Retry-After": value}))

    assert header("7") == 7.0
    assert header("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert header("99999") is None
    assert retry_after(httpx.Response(503)) is None


async def test_devices_probe_a_stopped_server_without_watching_and_return_when_it_does(
    tmp_path: Path, database_url: str
) -> None:
    flags = ["--database-url", database_url, "--no-mdns", "--sync-interval", "1s"]
    server = start_server(tmp_path / "server", flags)
    port = int(server.url.rsplit(":", 1)[1])
    async with admin_api(server.url, server.admin_token) as api:
        token = await enrollment_token(api, {})
    config = fleet_config(server.url, token, 5, tmp_path / "sim.json", interval=0.5, watch=True)
    async with Fleet(config) as fleet:
        devices = list(fleet.devices.values())
        await eventually(lambda: _all(d.online for d in devices), "every device synced")
        output = stop_server(server)
        await eventually(lambda: _all(not d.online for d in devices), "every sync failing")
        watches, failed = fleet.stats.watch_errors, fleet.stats.syncs_failed
        await eventually(
            lambda: _true(fleet.stats.syncs_failed >= failed + 2 * len(devices)),
            "every device probing again",
        )
        assert fleet.stats.watch_errors == watches, "the watch waits for a good sync"
        kinds = set(fleet.stats.errors)
        assert {"sync: ConnectError", "watch: ConnectError"} <= kinds, "both probe a closed port"
        # A request sent on a kept-alive connection as the stopping server closed it ends in a
        # ReadError or RemoteProtocolError (HTTP/1.1's keep-alive race); what must never
        # happen is an error answer (a held watch cancelled with a 500 was one).
        transport = {"ConnectError", "ReadError", "RemoteProtocolError"}
        assert {kind.split(": ", 1)[1] for kind in kinds} <= transport, f"{kinds}\n{output}"

        server = start_server(tmp_path / "server", flags, port=port)
        try:
            failed = fleet.stats.syncs_failed
            await eventually(lambda: _all(d.online for d in devices), "every device back")
            assert fleet.stats.syncs_failed == failed, "no failed sync once the server serves"
        finally:
            stop_server(server)


async def _all(values: Iterable[bool]) -> bool:
    return all(values)


async def _true(value: bool) -> bool:
    return value
