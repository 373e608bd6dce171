"""`signalbeam events watch` against a real server: live events, a lost server, Ctrl-C."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.cli.runner import Cli, Watcher, admin_request, enroll, sync
from tests.conftest import LiveServer, start_server, stop_server


def _relabel(server: LiveServer, labels: dict[str, str]) -> None:
    path = "/api/v1/devices/pi-001/labels"
    admin_request(server.url, server.admin_token, "PATCH", path, {"set": labels})


def _enroll(server: LiveServer) -> None:
    path = "/api/v1/enrollment-tokens"
    token = admin_request(server.url, server.admin_token, "POST", path, {})["token"]
    assert sync(server.url, enroll(server.url, token, "pi-001")).status_code == 200


def _restart(server: LiveServer, database_url: str) -> LiveServer:
    """Kill the server outright (a dropped connection) and start it again on the same port.

    The returned process listens on `server.url` (its own `url` names an unused port).
    """
    server.process.kill()
    server.process.wait(timeout=30)
    port = str(urlsplit(server.url).port)
    return start_server(server.data_dir, ["--database-url", database_url, "--port", port])


def _watch(cli: Cli, server: LiveServer, *args: str) -> Watcher:
    auth = {"SIGNALBEAM_SERVER": server.url, "SIGNALBEAM_TOKEN": server.admin_token}
    return Watcher(cli.start("events", "watch", *args, env=auth))


def _resume_after_restart(watcher: Watcher, server: LiveServer, database_url: str) -> None:
    restarted = _restart(server, database_url)
    try:
        watcher.err.wait_for("connection lost")
        # Changed before or after the watcher is back: either way Last-Event-ID brings it.
        _relabel(server, {"tier": "silver"})
        event = json.loads(watcher.out.wait_for('"device.labels_changed"'))
        assert "tier=silver" in event["message"]
        watcher.err.wait_for("reconnected")
        assert watcher.interrupt() == 0
    finally:
        watcher.process.kill()
        stop_server(restarted)


def test_watch_prints_live_events_resumes_after_a_restart_and_stops_on_ctrl_c(
    live_server: LiveServer, database_url: str, cli: Cli
) -> None:
    _enroll(live_server)
    with (
        _watch(cli, live_server, "--type", "device.labels_changed") as text,
        _watch(cli, live_server, "--json", "--device", "pi-001") as as_json,
    ):
        text.err.wait_for(f"watching events on {live_server.url}")
        as_json.err.wait_for("watching events")
        _relabel(live_server, {"tier": "gold"})
        line = text.out.wait_for("device.labels_changed")
        assert "pi-001" in line and "tier=gold" in line
        event = json.loads(as_json.out.wait_for('"device.labels_changed"'))
        assert event["device_id"] == "pi-001" and "tier=gold" in event["message"]
        assert text.interrupt() == 0

        _resume_after_restart(as_json, live_server, database_url)
        for watcher in (text, as_json):
            assert "Traceback" not in "\n".join(watcher.err.rest())
