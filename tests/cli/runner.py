"""Running the real `signalbeam` command in subprocesses, and enrolling devices over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.lines import Lines
from tests.zygote import ForkedProcess, zygote_socket

COMMAND = [sys.executable, "-m", "signalbeam"]
# Ambient settings of whoever runs the tests must not leak into what the CLI does.
SCRUBBED = ("SIGNALBEAM_SERVER", "SIGNALBEAM_TOKEN", "SIGNALBEAM_DEBUG", "COLUMNS", "FORCE_COLOR")
Process = subprocess.Popen[str] | ForkedProcess
FACTS = {"hostname": "pi", "os": "Debian 12", "arch": "aarch64", "agent_version": "0.1.0"}


@dataclass(frozen=True)
class Result:
    """What a person running one command sees: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The single `error:` line a failed command must print, checked to be the only output."""
        assert self.code != 0, self.out
        assert "Traceback" not in self.out + self.err, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


class Cli:
    """The `signalbeam` command with its own config dir, so nothing touches the real home."""

    def __init__(self, config_dir: Path, **env: str) -> None:
        self.config_dir = config_dir
        self.env = env

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The subprocess environment: ours, scrubbed, plus this CLI's config dir and `extra`."""
        base = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        return {**base, "SIGNALBEAM_CONFIG_DIR": str(self.config_dir), **self.env, **(extra or {})}

    def start(self, *args: str, env: dict[str, str] | None = None) -> Process:
        """Start a command without waiting for it."""
        zygote = zygote_socket()
        if zygote is not None:
            # The same command line in its own process, minus the interpreter's start-up.
            return ForkedProcess(
                zygote,
                list(args),
                self.environment(env),
                os.getcwd(),
                pipe_stdin=True,
                pipe_stderr=True,
            )
        return subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(env),
        )

    def run_all(
        self, *commands: Sequence[str], stdin: str = "", env: dict[str, str] | None = None
    ) -> list[Result]:
        """Run independent commands concurrently (each start costs seconds) and wait for all."""
        return gather(*(self.start(*command, env=env) for command in commands), stdin=stdin)

    def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
        """Run one command to completion."""
        process = self.start(*args, env=env)
        out, err = process.communicate(stdin, timeout=60)
        return Result(process.wait(), out, err)

    def ok(self, *args: str, stdin: str = "") -> str:
        """Run a command that must succeed without complaint and return its stdout."""
        result = self.run(*args, stdin=stdin)
        assert result.code == 0 and "error:" not in result.err, result
        return result.out


def gather(*processes: Process, stdin: str = "") -> list[Result]:
    """Feed each started command `stdin`, wait for all of them and return what they printed."""
    results = []
    for process in processes:
        out, err = process.communicate(stdin, timeout=60)
        results.append(Result(process.wait(), out, err))
    return results


class Watcher:
    """A long-running command (events watch) whose output is read line by line as it comes."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.out = Lines(process.stdout)
        self.err = Lines(process.stderr)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A watcher left connected would hold the server's shutdown open; never leave one behind.
        self.process.kill()
        self.process.wait(timeout=30)
        self.out.rest()
        self.err.rest()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def interrupt(self) -> int:
        """Press Ctrl-C and return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def enroll(url: str, token: str, device_id: str, labels: dict[str, str] | None = None) -> str:
    """Enroll a device with an enrollment token, as an agent would, and return its credential."""
    facts = {**FACTS, "hostname": device_id}
    body = {"token": token, "device_id": device_id, "facts": facts, "labels": labels or {}}
    response = httpx.post(f"{url}/api/device/v1/enroll", json=body)
    assert response.status_code == 200, response.text
    credential: str = response.json()["credential"]
    return credential


def sync(url: str, credential: str) -> httpx.Response:
    """One heartbeat from the device holding `credential`."""
    headers = {"Authorization": f"Bearer {credential}"}
    body = {
        "heartbeat": {
            "cpu_percent": 10,
            "memory_percent": 40,
            "disks": [{"mount": "/", "percent": 55}],
        }
    }
    return httpx.post(f"{url}/api/device/v1/sync", json=body, headers=headers)


def admin_request(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """A management API call as the admin, for setup that is not what a test is about."""
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.request(method, f"{url}{path}", json=body, headers=headers)
    assert response.is_success, response.text
    return response.json() if response.content else None


def json_lines(text: str) -> list[Any]:
    """Every line of `text` parsed as JSON."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
