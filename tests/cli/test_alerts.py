"""Alerts with the real CLI against a real server: a webhook hears of a device going offline
within seconds, and the operator lists, inspects and acknowledges the incident."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import start_fast_server, stop_or_explain
from tests.cli.runner import Cli, enroll, sync
from tests.components import free_port
from tests.conftest import LiveServer
from tests.server.receivers import HttpReceiver, http_receiver


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A real server syncing every 1 s, so a silent device is offline within seconds."""
    live = start_fast_server(tmp_path / "server", database_url, free_port())
    yield live
    stop_or_explain(live)


def wait_for_post(receiver: HttpReceiver, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if receiver.requests:
            found: dict[str, object] = receiver.requests[0].json()
            return found
        time.sleep(0.1)  # the receiver runs in its own thread; poll it, bounded
    raise AssertionError("the webhook heard nothing")


def test_an_offline_device_reaches_the_webhook_and_the_operator_acknowledges_it(
    cli: Cli, server: LiveServer
) -> None:
    cli.ok("login", "--server", server.url, "--token", server.admin_token)
    with http_receiver() as receiver:
        # Independent commands run side by side: each CLI start costs a second or two.
        added, edited, bad, created = cli.run_all(
            ("alerts", "notifiers", "add", "ops", "--kind", "webhook", "--url", receiver.url),
            ("alerts", "rules", "edit", "device-offline", "--for", "1s"),
            ("alerts", "rules", "add", "cpu", "--kind", "cpu_high"),
            ("tokens", "create", "--json"),
        )
        assert "Signing key (shown once" in added.out
        key = added.out.strip().splitlines()[-1].strip()
        assert edited.out.strip() == "Rule device-offline: device offline for 1s (critical, on)"
        assert "kind" in bad.error_line and "device_offline" in bad.error_line

        token = json.loads(created.out)["token"]
        assert sync(server.url, enroll(server.url, token, "kiosk-9")).status_code == 200
        notice = wait_for_post(receiver)  # silent from now on: offline within seconds
        assert (notice["transition"], notice["subject"]) == ("opened", "kiosk-9")
        assert receiver.requests[0].signed_by(key)

    listed, as_json, log = cli.run_all(
        ("alerts", "ls", "--state", "firing"),
        ("alerts", "ls", "--json"),
        ("alerts", "notifiers", "deliveries", "ops"),
    )
    assert "kiosk-9: device offline for 1s" in listed.out and "critical" in listed.out
    assert "opened:1" in log.out and "delivered" in log.out
    number = str(json.loads(as_json.out)["items"][0]["id"])
    shown, acked = cli.run_all(("alerts", "show", number), ("alerts", "ack", number))
    assert "fired" in shown.out and "device-offline" in shown.out
    assert acked.out.startswith(f"Acknowledged #{number}")
    again, made, vague = cli.run_all(
        ("alerts", "ack", number),
        ("alerts", "silence", "--for", "1h", "--selector", "site=lab", "--comment", "rewiring"),
        ("alerts", "silence", "--selector", "site=lab"),
    )
    assert "only a firing one can be acknowledged" in again.error_line
    assert made.out.startswith("Silence ") and "site=lab muted until" in made.out
    assert "say how long" in vague.error_line
    silence_id = made.out.split()[1].rstrip(":")
    assert "rewiring" in cli.ok("alerts", "silences")
    assert cli.ok("alerts", "unsilence", silence_id).strip() == f"Silence {silence_id} ended."
