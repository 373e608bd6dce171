"""Finding the control plane by mDNS on loopback, with a service the test advertises itself."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from zeroconf import IPVersion, ServiceInfo, Zeroconf

from signalbeam.agent.discovery import SERVICE_TYPE
from tests.agent.support import Admin, register
from tests.conftest import LiveServer

LOOPBACK = ["--mdns-interface", "127.0.0.1"]


@contextmanager
def advertised(*services: tuple[str, str]) -> Iterator[None]:
    """Announce `(name, url)` services of type _signalbeam._tcp.local. on 127.0.0.1."""
    zeroconf = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        for name, url in services:
            port = int(url.rsplit(":", 1)[1])
            info = ServiceInfo(
                SERVICE_TYPE,
                f"{name}.{SERVICE_TYPE}",
                port=port,
                properties={"url": url},
                addresses=[socket.inet_aton("127.0.0.1")],
                server=f"{name}.local.",
            )
            zeroconf.register_service(info)
        yield
    finally:
        zeroconf.unregister_all_services()
        zeroconf.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_register_without_server_finds_it_by_mdns(live_server: LiveServer, tmp_path: Path) -> None:
    admin = Admin(live_server.url, live_server.admin_token)
    name = unique("sb-test")
    state = tmp_path / "agent"
    try:
        # The live server announces itself on loopback too (same URL, so no real choice), but
        # other servers on this machine may as well: --mdns-name picks the one advertised here.
        with advertised((name, live_server.url)):
            done = register(
                state,
                admin.enrollment_token(),
                *LOOPBACK,
                "--mdns-name",
                name,
                "--device-id",
                "found-1",
            )
        assert done.returncode == 0, done.stderr
        assert f"with {live_server.url}" in done.stdout
        assert json.loads((state / "identity.json").read_text())["server"] == live_server.url
        assert admin.device("found-1")["device_id"] == "found-1"
    finally:
        admin.close()


def test_several_servers_are_listed_not_guessed(tmp_path: Path) -> None:
    # Sending an enrollment token to the wrong server would leak it: with a choice, ask.
    first, second = unique("sb-a"), unique("sb-b")
    with advertised((first, "http://127.0.0.1:1111"), (second, "http://127.0.0.1:2222")):
        done = register(tmp_path / "agent", "token", *LOOPBACK, "--mdns-timeout", "3")
        missing = register(
            tmp_path / "agent", "token", *LOOPBACK, "--mdns-timeout", "2", "--mdns-name", "nope"
        )
    assert done.returncode == 1
    assert first in done.stderr and second in done.stderr
    assert "pick one with --server URL or --mdns-name NAME" in done.stderr
    assert missing.returncode == 1 and 'no SignalBeam server called "nope"' in missing.stderr
    assert not (tmp_path / "agent" / "identity.json").exists()


def test_a_named_server_is_waited_for_while_another_answers_first(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # On a busy network another server answers at once; the one asked for by name starts
    # announcing only later (here 2.5 s into the agent's browse, past the 1 s the agent gives
    # other servers to answer) and is still the one found.
    admin = Admin(live_server.url, live_server.admin_token)
    name, token = unique("sb-late"), admin.enrollment_token()
    command = ["--mdns-timeout", "30", "--mdns-name", name, "--device-id", "late-1"]
    try:
        with advertised((unique("sb-other"), "http://127.0.0.1:1111")), ExitStack() as late:
            timer = threading.Timer(
                2.5, lambda: late.enter_context(advertised((name, live_server.url)))
            )
            timer.start()
            done = register(tmp_path / "agent", token, *LOOPBACK, *command)
            timer.join()
        assert done.returncode == 0, done.stderr
        assert admin.device("late-1")["device_id"] == "late-1"
    finally:
        admin.close()
