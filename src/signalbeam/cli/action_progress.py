"""Device actions as they run: one line per device as it answers, then the wait for pending ones.

The server streams each device's result (`Accept: application/x-ndjson`). A reboot is pending
until the device is back with a new boot id, a drain until it reports its units stopped; the
CLI waits for those (bounded), asking the device's state every second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer

from signalbeam.cli.client import Api, ApiError
from signalbeam.cli.output import CliError
from signalbeam.domain.durations import coarse_duration

POLL_SECONDS = 1.0
EXIT_INTERRUPTED = 130
# Where each action's results are recorded, as `signalbeam events ls --type` takes them.
RESULT_EVENTS = {
    "restart": ["device.unit_restarted", "device.action_failed"],
    "restart-agent": ["device.agent_restarted", "device.action_failed"],
    "reboot": ["device.reboot_requested", "device.rebooted", "device.action_failed"],
    "drain": ["device.drained"],
}
NDJSON = "application/x-ndjson"
BRING_BACK = (
    "To bring a drained device back: signalbeam uncordon DEVICE, then signalbeam rollback DEVICE "
    "(it gets the bundle version it had)."
)


@dataclass
class Progress:
    """Every device's result so far, printed as it changes unless `quiet` (--json)."""

    action: str
    quiet: bool = False
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The server took the action (its answer began): from then on it runs without us.
    taken: bool = False

    def update(self, device_id: str, status: str, detail: str) -> None:
        """Record (and show) a device's new result."""
        self.devices[device_id] = {"device_id": device_id, "status": status, "detail": detail}
        if not self.quiet:
            typer.echo(f"{device_id}  {status:<8} {detail}")

    def pending(self) -> list[str]:
        """Devices the action waits on."""
        return [d for d, result in self.devices.items() if result["status"] == "pending"]

    def counts(self) -> str:
        """`3 devices: 2 done, 1 skipped`."""
        statuses = [result["status"] for result in self.devices.values()]
        tally = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        return f"{len(statuses)} device{'s' * (len(statuses) != 1)}: {tally}"

    def failed(self) -> bool:
        """A device failed, or none was reached at all."""
        statuses = [result["status"] for result in self.devices.values()]
        return "failed" in statuses or (bool(statuses) and set(statuses) == {"skipped"})


def stream(api: Api, body: dict[str, Any], progress: Progress) -> None:
    """Run the action on the server, recording each device's result as it comes."""
    headers = {"Accept": NDJSON}
    with api.stream("/api/v1/actions", headers=headers, method="POST", body=body) as response:
        progress.taken = True
        for line in response.iter_lines():
            if line.strip():
                result = json.loads(line)
                progress.update(result["device_id"], result["status"], result["detail"])


def interrupted(progress: Progress) -> str:
    """What Ctrl-C says: the action goes on without us, and where its results will be."""
    action = progress.action
    if not progress.taken:
        return f"interrupted before the server took the {action}; no device was asked"
    types = " ".join(f"--type {t}" for t in RESULT_EVENTS.get(action, []))
    return (
        f"interrupted: the {action} goes on on the server and the devices; every device's "
        f"result is recorded: signalbeam events ls {types} (or each device's page)"
    )


def wait(api: Api, progress: Progress, timeout: float) -> None:
    """Poll each pending device until it is done, or `timeout` seconds pass."""
    check = CHECKS.get(progress.action)
    waiting = progress.pending()
    if progress.action == "drain":
        waiting = _online(api, waiting)  # an offline one stops its units when it is back
    if check is None or not waiting:
        return
    if not progress.quiet:
        typer.echo(
            f"Waiting up to {coarse_duration(timeout)} for {len(waiting)} device(s) "
            "(--no-wait returns at once)..."
        )
    started = time.monotonic()
    while waiting and time.monotonic() - started < timeout:
        time.sleep(POLL_SECONDS)
        for device_id in list(waiting):
            detail = check(_device(api, device_id), time.monotonic() - started)
            if detail is not None:
                progress.update(device_id, "done", detail)
                waiting.remove(device_id)
    for device_id in waiting:
        shown = _device(api, device_id)
        progress.update(device_id, "failed", _late(progress.action, shown, timeout))


def _rebooted(device: dict[str, Any], seconds: float) -> str | None:
    if device.get("rebooting_since") is not None or device.get("presence") != "online":
        return None
    boot = str(device.get("boot_id") or "?")[:8]
    return f"back after {coarse_duration(seconds)} with boot id {boot}"


def _drained(device: dict[str, Any], seconds: float) -> str | None:
    if device["reported_generation"] < device["desired_generation"]:
        return None
    return "units stopped"


CHECKS: dict[str, Callable[[dict[str, Any], float], str | None]] = {
    "reboot": _rebooted,
    "drain": _drained,
}


def _late(action: str, device: dict[str, Any], timeout: float) -> str:
    within = coarse_duration(timeout)
    if action == "reboot":
        return (
            f"not back with a new boot id within {within} (presence {device.get('presence')}); "
            f"see `signalbeam devices show {device['device_id']}`"
        )
    return f"has not reported its units stopped within {within}"


def _online(api: Api, device_ids: list[str]) -> list[str]:
    return [d for d in device_ids if _device(api, d).get("presence") == "online"]


def _device(api: Api, device_id: str) -> dict[str, Any]:
    try:
        shown: dict[str, Any] = api.get(f"/api/v1/devices/{device_id}")
    except ApiError as err:
        raise CliError(f"waiting for {device_id}: {err.message}") from err
    return shown
