"""The bundle the chaos tests roll out: one native app whose artifact lives on the control plane."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from typing import Any

from tests.agent.support import Admin, wait_until

SIZE = 4_000_000
RATE = 2_000_000  # bytes a second through the relay: the download takes about two seconds
APP = "import time\nprint('beacon up', flush=True)\nwhile True:\n    time.sleep(1)\n"


def tarball() -> bytes:
    """The app and SIZE bytes of noise (so gzip cannot shrink the download)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("beacon.py", APP.encode()), ("model.bin", os.urandom(SIZE))):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload(admin: Admin, content: bytes) -> str:
    """The artifact on the control plane; its sha256."""
    response = admin.http.put("/api/v1/artifacts/beacon.tar.gz", content=content)
    assert response.status_code == 201, response.text
    digest: str = response.json()["sha256"]
    return digest


def beacon(version: str) -> dict[str, Any]:
    """One native app from the uploaded artifact, healthy once it has run for a second."""
    app = {
        "name": "beacon",
        "artifact": {"name": "beacon.tar.gz"},
        "command": [sys.executable, "beacon.py"],
        "health": {"running-for": "1s", "timeout": "10s"},
    }
    return {"name": "beacon", "version": version, "apps": [app]}


def rollout(admin: Admin, device_id: str, version: str, soak: str = "1s") -> int:
    """A one-device rollout that retries a transient failure after a second."""
    body: dict[str, Any] = {"bundle": "beacon", "version": version, "devices": [device_id]}
    body |= {"soak": soak, "retry_backoff": "1s", "max_retries": 3}
    response = admin.http.post("/api/v1/rollouts", json=body)
    assert response.status_code == 201, response.text
    rollout_id: int = response.json()["id"]
    return rollout_id


def ended(admin: Admin, rollout_id: int, timeout: float = 60) -> dict[str, Any]:
    """The rollout once it is no longer running (completed, rolled back, ...)."""

    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = admin.http.get(f"/api/v1/rollouts/{rollout_id}").json()
        return body if body["status"] not in ("pending", "running", "paused") else None

    return wait_until(check, timeout, f"rollout {rollout_id} to end")
