"""`signalbeam exec --selector/--group`: one command on many devices, a few at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from signalbeam.cli import config
from signalbeam.cli.client import Api, ProblemError, connect
from signalbeam.cli.config import Credentials
from signalbeam.cli.output import CliError, console, print_json, table
from signalbeam.cli.session_stream import ask, open_stream
from signalbeam.protocol.sessions import STDERR, STDOUT

PAGE = 1000
# Output kept per device and stream; a fleet-wide `journalctl` must not fill the laptop.
KEEP_BYTES = 1024 * 1024
EXITED, SKIPPED, ERROR = "exited", "skipped", "error"


@dataclass
class DeviceRun:
    """What one device did with the command."""

    device: str
    status: str = EXITED
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    @property
    def result(self) -> str:
        """The table's result cell: the exit code, `skipped` or `error`."""
        return f"exit {self.exit_code}" if self.status == EXITED else self.status

    @property
    def first_line(self) -> str:
        """The first line it printed, or why it did not run."""
        text = self.error if self.status != EXITED else (self.stdout or self.stderr)
        lines = (text or "").strip().splitlines()
        return lines[0] if lines else ""


@dataclass
class Captured:
    """A device's output, kept up to KEEP_BYTES per stream."""

    streams: dict[int, bytearray] = field(default_factory=dict)

    def __call__(self, stream: int, data: bytes) -> None:
        kept = self.streams.setdefault(stream, bytearray())
        kept += data[: max(0, KEEP_BYTES - len(kept))]

    def text(self, stream: int) -> str:
        """One stream's output as text (undecodable bytes replaced)."""
        return bytes(self.streams.get(stream, b"")).decode(errors="replace")


def targets(api: Api, target: dict[str, str | None]) -> list[str]:
    """The ids of every device the selector/group matches, across all pages."""
    found: list[str] = []
    while True:
        params = {**target, "sort": "device_id", "limit": PAGE, "offset": len(found)}
        page: dict[str, Any] = api.get("/api/v1/devices", params)
        found += [device["device_id"] for device in page["items"]]
        if not page["items"] or len(found) >= page["total"]:
            return found


def run_on(api: Api, credentials: Credentials, device_id: str, body: dict[str, Any]) -> DeviceRun:
    """Run the command on one device and capture the outcome; never raises a CliError."""
    try:
        created = ask(api, device_id, "exec", body)
    except ProblemError as err:
        # Offline (409) is a device that was not reached, not one that failed.
        return DeviceRun(device_id, SKIPPED if err.status == 409 else ERROR, error=err.message)
    except CliError as err:
        return DeviceRun(device_id, ERROR, error=err.message)
    return _stream(credentials, device_id, created)


def _stream(credentials: Credentials, device_id: str, created: dict[str, Any]) -> DeviceRun:
    captured = Captured()
    try:
        stream = open_stream(credentials, created)
        try:
            stream.wait_started()
            # The command gets no stdin on many devices. A quick one may have ended already;
            # its output is still queued for `read`.
            with suppress(ConnectionClosed):
                stream.send_eof()
            ending = stream.read(captured)
        finally:
            stream.close()
    except CliError as err:
        return DeviceRun(device_id, ERROR, error=err.message)
    run = DeviceRun(device_id, stdout=captured.text(STDOUT), stderr=captured.text(STDERR))
    if ending.error is not None:
        run.status, run.error = ERROR, ending.error
    else:
        run.exit_code = ending.code
    return run


def run(target: dict[str, str | None], body: dict[str, Any], parallel: int, as_json: bool) -> int:
    """Run on every device of the target, print the results; 0 when every one reached exited 0."""
    with connect() as api:
        devices = targets(api, target)
    if not devices:
        raise CliError(f"no devices match {_describe(target)}; see `signalbeam devices ls`")
    return run_devices(devices, body, parallel, as_json)


def run_devices(devices: list[str], body: dict[str, Any], parallel: int, as_json: bool) -> int:
    """Run on these devices, `parallel` at a time, print the results; the exit status."""
    credentials = config.resolve()
    with (
        Api(credentials.server, credentials.token) as api,
        ThreadPoolExecutor(max_workers=min(parallel, len(devices))) as pool,
    ):
        runs = list(pool.map(lambda d: run_on(api, credentials, d, body), devices))
    _print(runs, as_json)
    reached = [r for r in runs if r.status != SKIPPED]
    return 0 if all(r.status == EXITED and r.exit_code == 0 for r in reached) else 1


def _describe(target: dict[str, str | None]) -> str:
    return " and ".join(f"--{key} {value}" for key, value in target.items() if value is not None)


def _print(runs: list[DeviceRun], as_json: bool) -> None:
    if as_json:
        print_json([asdict(r) for r in runs])
        return
    rows = [[r.device, r.result, r.first_line] for r in runs]
    console().print(table(["DEVICE", "RESULT", "OUTPUT"], rows))
