"""Start-first container updates on a real Podman: a client on the device network sees no gap.

A real agent runs a busybox web server as unit `web` (no host ports, so start-first by
default). A client container on the device's network looks up `web` through Podman's DNS
before every request and fetches the version it serves, throughout three updates: one that
succeeds, one whose new copy never becomes healthy (the old copy keeps serving), and one
that publishes a host port, which forces stop-first. The agent reports the order it used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.bundle_support import assign, push, start_agent, wait_reported
from tests.agent.support import Admin, Agents, wait_until
from tests.components import free_port
from tests.conftest import LiveServer
from tests.engine import Engine, engine

__all__ = ["engine"]

DEVICE = "kiosk-sf"
NETWORK = f"sb-{DEVICE}"
CLIENT = "sb-test-start-first-client"
HEALTH = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/version"]
# Resolve the alias before each request, as a client that follows DNS does, and say which
# version answered. Busybox is static: its wget cannot look names up, its nslookup can.
# aardvark-dns 1.4 drops queries while it reloads (on any container start or stop on the
# host) and at times does not answer for seconds, so a lookup that gets no answer within
# 1 s is tried again, for up to a minute, as resolvers do; it asks Podman's DNS server
# directly, as the resolver's second server cannot know the name anyway.
LOOP = r"""
dns=$(busybox sed -n 's/^nameserver //p' /etc/resolv.conf | busybox head -n 1)
lookup() {
  busybox timeout 1 busybox nslookup -type=a web $dns 2>/dev/null | busybox sed -n 's/^Address: \([0-9.]*\)$/\1/p' | busybox head -n 1
}
while true; do
  tries=0
  while ip=$(lookup); [ -z "$ip" ] && [ $tries -lt 60 ]; do tries=$((tries+1)); busybox usleep 100000; done
  if answer=$(busybox timeout 5 wget -q -O - "http://$ip:8080/version" 2>&1) && [ -n "$ip" ]; then
    echo "ok $answer"
  else
    echo "fail ip=$ip $answer $(busybox date +%s)"
  fi
  busybox usleep 20000
done
"""


def site(version: str, image: str, **web: Any) -> dict[str, Any]:
    """One web server saying its version at /version."""
    # The shell stays PID 1 and ends on SIGTERM (httpd as PID 1 ignores it: a 10 s stop).
    serve = f"echo {version} > /www/version; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"
    return {
        "name": "kiosk",
        "version": version,
        "containers": [
            {
                "name": "web",
                "image": image,
                "command": ["sh", "-c", serve],
                "health": {"exec": HEALTH, "timeout": "4s", "interval": "200ms"},
                **web,
            }
        ],
    }


@pytest.fixture
def kiosk(
    fast_server: LiveServer, admin: Admin, agents: Agents, engine: Engine, tmp_path: Path
) -> Iterator[None]:
    """A real agent on the engine as device `kiosk-sf`; its containers and network go after."""
    engine.remove_owned(DEVICE)
    engine.podman("rm", "-f", CLIENT, check=False)
    start_agent(fast_server, admin, agents, tmp_path, DEVICE, container_socket=engine.socket)
    yield
    agents.stop_all()
    engine.podman("rm", "-f", "-t", "0", CLIENT, check=False)
    engine.remove_owned(DEVICE)
    engine.podman("network", "rm", "-f", NETWORK, check=False)


def answers(engine: Engine) -> list[str]:
    return engine.podman("logs", CLIENT).stdout.splitlines()


def served(engine: Engine, version: str, after: int) -> bool:
    return f"ok {version}" in answers(engine)[after:]


def wait_served(engine: Engine, version: str, after: int, what: str) -> None:
    try:
        wait_until(lambda: served(engine, version, after), 60, what)
    except AssertionError as err:
        raise AssertionError(f"{err}; the client's last lines: {answers(engine)[-8:]}") from None


def update_order(admin: Admin) -> str | None:
    [item] = admin.device(DEVICE)["reported"]["items"]
    value: str | None = item["update_order"]
    return value


# The engine's tests share one worker, and this one takes four updates: one database is
# enough here (the reported order crosses both in tests/agent/test_start_first_apps.py).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_start_first_updates_drop_no_request_and_stop_first_is_reported_where_forced(
    admin: Admin, engine: Engine, kiosk: None
) -> None:
    push(admin, site("1.0.0", engine.image("sb/kiosk", "1.0.0")))
    assign(admin, "kiosk@1.0.0", devices=[DEVICE])
    wait_reported(admin, DEVICE, "running", "1.0.0")
    assert update_order(admin) is None  # a first start replaced nothing
    engine.podman(
        "run", "-d", "--name", CLIENT, "--network", NETWORK, engine.base_image, "sh", "-c", LOOP
    )
    wait_served(engine, "1.0.0", 0, "the client to reach web 1.0.0")

    push(admin, site("1.1.0", engine.image("sb/kiosk", "1.1.0")))
    assign(admin, "kiosk@1.1.0", devices=[DEVICE])
    wait_reported(admin, DEVICE, "running", "1.1.0")
    assert update_order(admin) == "start-first"
    mark = len(answers(engine))
    wait_served(engine, "1.1.0", mark, "the client to reach web 1.1.0")
    [container] = engine.containers(DEVICE)
    assert container["Names"] == [f"/sb-{DEVICE}-web"]  # the next update finds the usual name

    # The new copy never answers its health check: it goes, the old one never stopped.
    broken = {"health": {"exec": [*HEALTH[:-1], "http://127.0.0.1:8080/gone"], "timeout": "2s"}}
    push(admin, site("1.2.0", engine.image("sb/kiosk", "1.2.0"), **broken))
    assign(admin, "kiosk@1.2.0", devices=[DEVICE])
    failed = wait_reported(admin, DEVICE, "failed", "1.1.0")
    assert "kiosk@1.2.0 failed: health check failed: web" in failed["reason"]
    [container] = engine.containers(DEVICE)
    assert dict(container["Labels"])["io.signalbeam.bundle"] == "kiosk@1.1.0"  # type: ignore[call-overload]
    mark = len(answers(engine))
    wait_served(engine, "1.1.0", mark, "web 1.1.0 to go on serving")

    lines = answers(engine)
    failures = [line for line in lines if not line.startswith("ok ")]
    assert failures == [], f"{len(failures)} of {len(lines)} requests failed: {failures[:5]}"
    assert served(engine, "1.0.0", 0)

    # A host port can be bound by one copy only: stop-first, and the agent says so.
    port = free_port()
    push(admin, site("1.3.0", engine.image("sb/kiosk", "1.1.0"), ports=[f"127.0.0.1:{port}:8080"]))
    assign(admin, "kiosk@1.3.0", devices=[DEVICE])
    wait_reported(admin, DEVICE, "running", "1.3.0")
    assert update_order(admin) == "stop-first"
