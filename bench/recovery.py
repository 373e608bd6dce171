"""How fast a device is back after the server was gone: a real agent, a real server restarted.

Starts a throwaway `signalbeam server` (SQLite, loopback) and one real `signalbeam-agent`,
then, `--outages` times: stops the server for `--seconds`, starts it again at the same URL,
and measures from the moment it serves to the agent's next successful sync (its status.json).
The target is p95 <= 2 x the sync interval. Also the agent's CPU while it probed the silent
server. Usage: python -m bench.recovery [--outages 5] [--seconds 60] [--interval 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.agent_footprint import AGENT, enroll_agent, free_port, start_server

POLL_SECONDS = 0.05
WAIT_SECONDS = 300.0


def last_sync(state_dir: Path) -> str | None:
    """When the agent last synced, from its own status file."""
    try:
        value = json.loads((state_dir / "status.json").read_text()).get("last_sync_at")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, str) else None


def wait_for_sync_after(state_dir: Path, before: str | None) -> float:
    """Block until the agent's last sync differs from `before`; the monotonic time then."""
    deadline = time.monotonic() + WAIT_SECONDS
    while last_sync(state_dir) == before:
        if time.monotonic() > deadline:
            raise SystemExit(f"the agent did not sync again within {WAIT_SECONDS:g} s")
        time.sleep(POLL_SECONDS)
    return time.monotonic()


def run(outages: int, seconds: float, interval: float) -> dict[str, Any]:
    """Start everything, cut the server `outages` times, stop everything."""
    with tempfile.TemporaryDirectory(prefix="sb-recovery-") as tmp:
        data_dir, state_dir, port = Path(tmp) / "server", Path(tmp) / "agent", free_port()
        server, url = start_server(data_dir, interval, port)
        enroll_agent(url, data_dir, state_dir)
        env = {**os.environ, "SIGNALBEAM_AGENT_INTERVAL": f"{interval:g}"}
        with (Path(tmp) / "agent.log").open("wb") as log:
            agent = subprocess.Popen(  # noqa: S603 - our own command line
                [*AGENT, "run", "--state-dir", str(state_dir)], env=env, stdout=log, stderr=log
            )
            try:
                wait_for_sync_after(state_dir, None)
                recovered, cpu = [], []
                process = psutil.Process(agent.pid)
                for _ in range(outages):
                    server.terminate()
                    server.wait(60)
                    used = sum(process.cpu_times()[:2])
                    time.sleep(seconds)  # the outage itself: what is measured comes after it
                    cpu.append(100 * (sum(process.cpu_times()[:2]) - used) / seconds)
                    before = last_sync(state_dir)
                    server, _ = start_server(data_dir, interval, port)
                    up = time.monotonic()
                    recovered.append(wait_for_sync_after(state_dir, before) - up)
            finally:
                agent.terminate()
                agent.wait(30)
                server.terminate()
                server.wait(60)
    ordered = sorted(recovered)
    return {
        "interval_seconds": interval,
        "outage_seconds": seconds,
        "outages": outages,
        "recovery_seconds": [round(r, 2) for r in recovered],
        "recovery_p50_seconds": round(statistics.median(ordered), 2),
        "recovery_p95_seconds": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "recovery_max_seconds": round(ordered[-1], 2),
        "agent_cpu_percent_while_offline": round(statistics.mean(cpu), 2),
    }


def main() -> None:
    """Parse the arguments, run the benchmark, print JSON then a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--outages", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each outage")
    parser.add_argument("--interval", type=float, default=5.0, help="sync interval")
    args = parser.parse_args()
    result = run(args.outages, args.seconds, args.interval)
    print(json.dumps(result, indent=2))
    print(
        f"back after a {args.seconds:g} s outage: p50 {result['recovery_p50_seconds']} s, "
        f"p95 {result['recovery_p95_seconds']} s (interval {args.interval:g} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
