"""Config end to end: an operator changes a group's config on the real server, a real agent
applies it to real native apps, only the unit that uses the key restarts, the device reports
`applied`, and one rollback puts the old value back; no new bundle version is pushed.

The apps are the ones of tests/agent/test_config_apps.py (each answers on its port with its
pid, its env and its config file); here the control plane is the real server, whose key signs
the layers and which the agent pinned at enrollment.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from tests.agent.bundle_support import push, start_agent
from tests.agent.support import Admin, Agents, wait_until
from tests.agent.test_config_apps import tarball
from tests.components import free_port
from tests.conftest import LiveServer

DEVICE = "cfg-e2e-1"
GROUP = "oslo"


def ask(port: int) -> dict[str, Any]:
    """What the app on `port` says about itself ({} when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            answer: dict[str, Any] = json.loads(conn.recv(65536).decode())
            return answer
    except (OSError, ValueError):
        return {}


def shop(admin: Admin, ports: dict[str, int]) -> dict[str, Any]:
    """Two apps from one artifact uploaded to the server: web reads LOG_LEVEL, worker WORKERS."""
    uploaded = admin.http.put("/api/v1/artifacts/app.tar.gz", content=tarball())
    assert uploaded.status_code == 201, uploaded.text

    def app(name: str, env: dict[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "artifact": {"name": "app.tar.gz"},
            "command": [sys.executable, "app.py", str(ports[name]), name],
            "health": {"tcp": ports[name], "timeout": "8s", "interval": "200ms"},
            "config_env": env,
        }

    return {
        "name": "shop",
        "version": "1.0.0",
        "apps": [app("web", {"LOG_LEVEL": "LOG_LEVEL"}), app("worker", {"WORKERS": "workers"})],
    }


def device_config(admin: Admin) -> dict[str, Any]:
    answer = admin.http.get(f"/api/v1/devices/{DEVICE}/config")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def applied(admin: Admin, digest: str) -> dict[str, Any]:
    """Wait until the device reports the config `digest` applied; its config view."""

    def check() -> dict[str, Any] | None:
        now = device_config(admin)
        state = now["status"]
        return now if state["state"] == "applied" and state["applied_digest"] == digest else None

    try:
        return wait_until(check, 60, f"config {digest} applied")
    except AssertionError as err:
        raise AssertionError(f"{err}; the device shows {device_config(admin)}") from None


def change(admin: Admin, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = admin.http.patch(path, json=body)
    assert answer.status_code == 200, answer.text
    return device_config(admin)


def test_a_group_config_change_reaches_the_app_and_rolls_back(
    fast_server: LiveServer, admin: Admin, agents: Agents, tmp_path: Path
) -> None:
    ports = {"web": free_port(), "worker": free_port()}
    agent = start_agent(fast_server, admin, agents, tmp_path, DEVICE, interval="1")
    wait_until(
        lambda: admin.http.get(f"/api/v1/devices/{DEVICE}").status_code == 200, 30, "enrolled"
    )
    assert admin.http.post("/api/v1/groups", json={"name": GROUP}).status_code == 201
    members = admin.http.post(f"/api/v1/groups/{GROUP}/members", json={"devices": [DEVICE]})
    assert members.status_code == 200, members.text
    change(admin, "/api/v1/config/tenant", {"set": {"LOG_LEVEL": "info", "workers": 2}})
    change(admin, f"/api/v1/config/groups/{GROUP}", {"set": {"LOG_LEVEL": "warning"}})
    push(admin, shop(admin, ports))
    assigned = admin.http.post(
        "/api/v1/bundles/shop/versions/1.0.0/assign", json={"devices": [DEVICE]}
    )
    assert assigned.status_code == 200, assigned.text
    first = applied(admin, device_config(admin)["digest"])
    web, worker = ask(ports["web"]), ask(ports["worker"])
    assert web["env"] == {"LOG_LEVEL": "warning"} and worker["env"] == {"WORKERS": "2"}
    origins = {i["key"]: i["origin"] for i in first["items"]}
    assert origins == {"LOG_LEVEL": f"group {GROUP}, version 1", "workers": "tenant, version 1"}

    # The operator changes LOG_LEVEL for the group: only web uses it, so only web restarts.
    preview = admin.http.patch(
        f"/api/v1/config/groups/{GROUP}",
        params={"dry_run": "true"},
        json={"set": {"LOG_LEVEL": "debug"}, "message": "more logs in oslo"},
    )
    assert preview.status_code == 200, preview.text
    assert [(c["key"], c["new"]) for c in preview.json()["changes"]] == [("LOG_LEVEL", "debug")]
    assert ask(ports["web"])["pid"] == web["pid"], "a preview changes nothing"
    body = {"set": {"LOG_LEVEL": "debug"}, "message": "more logs in oslo"}
    second = applied(admin, change(admin, f"/api/v1/config/groups/{GROUP}", body)["digest"])
    now_web = wait_until(
        lambda: ((a := ask(ports["web"])).get("env") == {"LOG_LEVEL": "debug"} and a) or None,
        30,
        "web with the new LOG_LEVEL",
    )
    assert now_web["pid"] != web["pid"]
    assert ask(ports["worker"])["pid"] == worker["pid"], "worker uses no changed key"
    origins = {i["key"]: i["origin"] for i in second["items"]}
    assert origins["LOG_LEVEL"] == f"group {GROUP}, version 2"
    counts = admin.http.get(f"/api/v1/groups/{GROUP}/config/status").json()
    assert counts["applied"] == 1 and counts["pending"] == counts["failed"] == 0

    # One command back: the group's layer as it was at version 1, as a new version 3.
    rolled = admin.http.post(f"/api/v1/config/groups/{GROUP}/rollback", json={"to": 1})
    assert rolled.status_code == 200, rolled.text
    back = applied(admin, device_config(admin)["digest"])
    assert {i["key"]: i["origin"] for i in back["items"]}[
        "LOG_LEVEL"
    ] == f"group {GROUP}, version 3"
    wait_until(
        lambda: ask(ports["web"]).get("env") == {"LOG_LEVEL": "warning"}, 30, "web on warning"
    )
    assert admin.http.get("/api/v1/bundles/shop").json()["version_count"] == 1, "no new bundle"
    assert agent.alive(), agent.log()
