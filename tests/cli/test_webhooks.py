"""`signalbeam webhooks` with the real CLI against a real server: a webhook made from the command
line hears of the device that enrolls in its selector, signed with the key shown once; the
operator lists, inspects, tests, changes, redelivers and removes it.

The commands' behaviour does not depend on the database, so the module shares one SQLite
server; tests/server/test_webhooks.py covers both backends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.runner import Cli, enroll
from tests.conftest import LiveServer, start_server, stop_server
from tests.server.receivers import HttpReceiver, http_receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite server for every test in this module."""
    live = start_server(tmp_path_factory.mktemp("webhooks-cli") / "server", ["--no-mdns"])
    yield live
    stop_server(live)


@pytest.fixture
def cli(tmp_path: Path, server: LiveServer) -> Cli:
    """The CLI, logged in to the shared server."""
    cli = Cli(tmp_path / "config")
    cli.ok("login", "--server", server.url, "--token", server.admin_token)
    return cli


def wait_for_posts(receiver: HttpReceiver, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(receiver.requests) >= count:
            return
        time.sleep(0.1)  # the receiver runs in its own thread; poll it, bounded
    raise AssertionError(f"the webhook got {len(receiver.requests)} of {count} posts")


def test_a_webhook_made_from_the_cli_hears_of_an_enrolling_device(
    cli: Cli, server: LiveServer
) -> None:
    with http_receiver() as receiver:
        events = ("--event", "device.registered", "--event", "rollout.*,rollout.completed")
        created, token = cli.run_all(
            (
                "webhooks",
                "create",
                "oslo",
                "--url",
                receiver.url,
                *events,
                "--selector",
                "site=oslo",
            ),
            ("tokens", "create", "--json"),
        )
        assert "Added webhook oslo for device.registered, rollout.*, rollout.completed" in (
            created.out
        )
        assert "Signing key (shown once" in created.out
        key = created.out.strip().splitlines()[-1].strip()
        enrollment = json.loads(token.out)["token"]
        enroll(server.url, enrollment, "pi-bergen", {"site": "bergen"})
        enroll(server.url, enrollment, "pi-oslo", {"site": "oslo"})
        wait_for_posts(receiver, 1)
        event = receiver.requests[0].json()["event"]
        assert (event["type"], event["device_id"]) == ("device.registered", "pi-oslo")
        assert receiver.requests[0].signed_by(key)

        listed, shown, logged, tested = cli.run_all(
            ("webhooks", "ls"),
            ("webhooks", "show", "oslo"),
            ("webhooks", "deliveries", "oslo", "--json"),
            ("webhooks", "test", "oslo"),
        )
        assert "oslo" in listed.out and "site=oslo" in listed.out and key not in listed.out
        assert "set (write-only)" in shown.out and key not in shown.out
        # The test send may be logged already too: it ran beside this listing.
        (delivery,) = [d for d in json.loads(logged.out) if d["event_type"] != "webhook.test"]
        assert (delivery["event_type"], delivery["state"]) == ("device.registered", "delivered")
        assert tested.out.strip() == "Test to oslo delivered (HTTP 200)."
        assert len(receiver.requests) == 2, "pi-bergen is not in the selector: not sent"

        updated, again = cli.run_all(
            ("webhooks", "update", "oslo", "--disabled", "--selector", ""),
            ("webhooks", "redeliver", "oslo", str(delivery["id"])),
        )
        assert "enabled" in updated.out and "no" in updated.out, updated.out
        assert "every device" in updated.out
        assert again.out.startswith(f"Delivery {delivery['id']} of oslo queued again")
        wait_for_posts(receiver, 3)
        assert receiver.requests[2].body == receiver.requests[0].body
        assert cli.ok("webhooks", "rm", "oslo").strip() == "Removed webhook oslo."


def test_mistakes_are_one_line_naming_the_fix(cli: Cli) -> None:
    unknown, bad_url, missing, nothing = cli.run_all(
        ("webhooks", "create", "x", "--url", "https://a.example.com", "--event", "device.nope"),
        ("webhooks", "create", "x", "--url", "ftp://a.example.com", "--event", "device.*"),
        ("webhooks", "show", "nope"),
        ("webhooks", "update", "nope"),
    )
    assert "unknown event type device.nope" in unknown.error_line
    assert "device.registered" in unknown.error_line
    assert "not an http(s) URL" in bad_url.error_line
    assert 'no webhook "nope"' in missing.error_line
    assert "nothing to change" in nothing.error_line
