"""How much a real agent costs a device: steady RSS and CPU at the default 15 s interval.

Starts a throwaway `signalbeam server` (SQLite, loopback), registers and runs one real
`signalbeam-agent`, samples the agent process with psutil once a second, and prints JSON and
a short table. Usage: python -m bench.agent_footprint [--seconds 180] [--interval 15]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

AGENT = [sys.executable, "-m", "signalbeam.agent"]
WARMUP_SECONDS = 10.0


@dataclass
class Footprint:
    """What one agent used over the measured window."""

    seconds: float
    interval_seconds: float
    syncs: int
    rss_mb_steady: float
    rss_mb_max: float
    uss_mb: float
    cpu_percent_one_core: float
    python: str


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    data_dir: Path, interval: float, port: int | None = None, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[str], str]:
    """A real control plane on `host` (on `port`, else a free one); returns once it serves."""
    port = port or free_port()
    command = [sys.executable, "-m", "signalbeam", "server", "--data-dir", str(data_dir)]
    command += ["--host", host, "--port", str(port), "--no-mdns"]
    command += ["--sync-interval", f"{interval:g}s"]
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "Uvicorn running on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(60) or process.poll() is not None:
        process.kill()
        raise SystemExit("the server did not start")
    return process, f"http://{host}:{port}"


def enroll_agent(url: str, data_dir: Path, state_dir: Path, launcher: Sequence[str] = ()) -> None:
    """Create an enrollment token and register the agent with it (behind `launcher`)."""
    admin = (data_dir / "admin-token").read_text().strip()
    response = httpx.post(
        f"{url}/api/v1/enrollment-tokens", json={}, headers={"Authorization": f"Bearer {admin}"}
    )
    response.raise_for_status()
    env = {**os.environ, "SIGNALBEAM_AGENT_TOKEN": response.json()["token"]}
    command = [*launcher, *AGENT, "register", "--server", url, "--state-dir", str(state_dir)]
    command += ["--device-id", "bench-1"]
    subprocess.run(command, env=env, check=True, capture_output=True)  # noqa: S603


def measure(agent: psutil.Process, seconds: float) -> tuple[list[float], float, float]:
    """RSS samples (MB), CPU seconds used and wall seconds over the window."""
    time.sleep(WARMUP_SECONDS)
    start_cpu, start_wall = sum(agent.cpu_times()[:2]), time.monotonic()
    rss: list[float] = []
    while time.monotonic() - start_wall < seconds:
        rss.append(agent.memory_info().rss / 2**20)
        time.sleep(1.0)
    return rss, sum(agent.cpu_times()[:2]) - start_cpu, time.monotonic() - start_wall


def run(seconds: float, interval: float) -> Footprint:
    """Start everything, measure, stop everything."""
    with tempfile.TemporaryDirectory(prefix="sb-footprint-") as tmp:
        data_dir, state_dir = Path(tmp) / "server", Path(tmp) / "agent"
        server, url = start_server(data_dir, interval)
        try:
            enroll_agent(url, data_dir, state_dir)
            env = {**os.environ, "SIGNALBEAM_AGENT_INTERVAL": f"{interval:g}"}
            log = (Path(tmp) / "agent.log").open("wb")
            agent = subprocess.Popen(  # noqa: S603 - our own command line
                [*AGENT, "run", "--state-dir", str(state_dir)], env=env, stdout=log, stderr=log
            )
            try:
                process = psutil.Process(agent.pid)
                rss, cpu, wall = measure(process, seconds)
                uss = process.memory_full_info().uss / 2**20
            finally:
                agent.terminate()
                agent.wait(30)
                log.close()
            status = json.loads((state_dir / "status.json").read_text())
        finally:
            server.terminate()
            server.wait(60)
    return Footprint(
        seconds=round(wall, 1),
        interval_seconds=interval,
        syncs=int(status.get("samples_synced", 0)),
        rss_mb_steady=round(statistics.median(rss[len(rss) // 2 :]), 1),
        rss_mb_max=round(max(rss), 1),
        uss_mb=round(uss, 1),
        cpu_percent_one_core=round(100 * cpu / wall, 2),
        python=sys.version.split()[0],
    )


def table(result: Footprint) -> str:
    """The short human summary."""
    rows = [
        ("measured", f"{result.seconds:g} s after {WARMUP_SECONDS:g} s warm-up"),
        ("sync interval", f"{result.interval_seconds:g} s ({result.syncs} syncs in total)"),
        ("steady RSS", f"{result.rss_mb_steady} MB (max {result.rss_mb_max} MB)"),
        ("unique memory (USS)", f"{result.uss_mb} MB"),
        ("CPU", f"{result.cpu_percent_one_core} % of one core"),
    ]
    return "\n".join(f"{label:<20} {value}" for label, value in rows)


def main() -> None:
    """Parse the arguments, run the benchmark, print JSON then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=180.0, help="measured window")
    parser.add_argument("--interval", type=float, default=15.0, help="sync interval")
    args = parser.parse_args()
    result = run(args.seconds, args.interval)
    print(json.dumps(asdict(result), indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
