"""Recovery under network faults: a real agent in its own network namespace, a real server.

Starts a throwaway `signalbeam server` (SQLite) on the host end of a veth and one real
`signalbeam-agent` inside the namespace (tests/chaos/netns.py; needs root, `ip` and `nft`).
Then, `--cuts` times, takes the link down for `--seconds` and measures from the link coming
back to the agent's next sync. Then, for `--loss-seconds`, drops `--loss` % of the device's
packets (nftables) and holds every chunk `--delay` seconds each way (a relay on the host end,
as this kernel has no netem), and measures each sample's delay: from the sync that carried it
starting to its answer. The same without faults first, as the baseline.
Usage: python -m bench.chaos [--cuts 3] [--seconds 20] [--interval 5] [--loss 20] [--delay 0.3]
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
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.chaos.netns import Namespace, available
from tests.chaos.relay import Relay, relay

from bench.agent_footprint import AGENT, enroll_agent, free_port, start_server
from bench.recovery import last_sync, wait_for_sync_after

POLL_SECONDS = 0.05


def status(state_dir: Path) -> dict[str, Any]:
    """The agent's status.json (empty while it is being replaced)."""
    try:
        value: dict[str, Any] = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return value


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max, rounded (None when nothing was measured)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def sample_delays(state_dir: Path, seconds: float) -> tuple[list[float], int]:
    """For `seconds`: each sync's time from its start to its answer; and the failed syncs."""
    delays, failures, seen, errors = [], 0, last_sync(state_dir), None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = status(state_dir)
        if now.get("last_error") and now.get("last_error") != errors:
            failures += 1
        errors = now.get("last_error")
        synced, attempted = now.get("last_sync_at"), now.get("last_attempt_at")
        if synced and synced != seen and attempted:
            gap = datetime.fromisoformat(synced) - datetime.fromisoformat(attempted)
            delays.append(max(0.0, gap.total_seconds()))
            seen = synced
        time.sleep(POLL_SECONDS)
    return delays, failures


def link_cuts(space: Namespace, state_dir: Path, cuts: int, seconds: float) -> list[float]:
    """Seconds from the link coming back to the agent's next sync, per cut."""
    back = []
    for _ in range(cuts):
        space.link(up=False)
        time.sleep(seconds)  # the cut itself: what is measured comes after it
        before = last_sync(state_dir)
        space.link(up=True)
        up = time.monotonic()
        back.append(round(wait_for_sync_after(state_dir, before) - up, 2))
    return back


def lossy(
    space: Namespace, state_dir: Path, held: Relay, args: argparse.Namespace
) -> dict[str, Any]:
    """Sample delays without faults, then with loss and the relay holding every chunk."""
    clean, _ = sample_delays(state_dir, args.loss_seconds / 2)
    held.delay = args.delay
    space.loss(args.loss)
    faulty, failures = sample_delays(state_dir, args.loss_seconds)
    space.heal()
    held.delay = 0.0
    return {
        "baseline_delay_seconds": percentiles(clean),
        "delay_seconds": percentiles(faulty),
        "syncs": len(faulty),
        "failed_syncs": failures,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything in a fresh namespace, inject the faults, stop everything."""
    reason = available()
    if reason is not None:
        raise SystemExit(f"bench.chaos: {reason}")
    space = Namespace.create()
    try:
        with tempfile.TemporaryDirectory(prefix="sb-chaos-") as tmp:
            return _measure(space, Path(tmp), args)
    finally:
        space.destroy()


def _measure(space: Namespace, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    data_dir, state_dir, port = tmp / "server", tmp / "agent", free_port()
    server, url = start_server(data_dir, args.interval, port, host=space.host)
    enroll_agent(url, data_dir, state_dir, launcher=space.launcher)
    env = {**os.environ, "SIGNALBEAM_AGENT_INTERVAL": f"{args.interval:g}"}
    env["SIGNALBEAM_AGENT_REQUEST_TIMEOUT"] = f"{args.interval:g}"
    # Every connection goes through the relay from the start (at no delay until the loss run):
    # DNAT only catches new connections, and the agent keeps its own open.
    with relay(space.host, port, 0.0) as held, (tmp / "agent.log").open("wb") as log:
        space.through_relay(port, held.port)
        agent = subprocess.Popen(  # noqa: S603 - our own command line
            [*space.launcher, *AGENT, "run", "--state-dir", str(state_dir)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_sync_after(state_dir, None)
            back = link_cuts(space, state_dir, args.cuts, args.seconds)
            loss = lossy(space, state_dir, held, args) if args.loss_seconds > 0 else {}
            taken = status(state_dir).get("samples_taken")
        finally:
            agent.terminate()
            agent.wait(30)
            server.terminate()
            server.wait(60)
    return {
        "interval_seconds": args.interval,
        "link": {
            "cuts": args.cuts,
            "cut_seconds": args.seconds,
            "back_seconds": back,
            **{f"back_{k}_seconds": v for k, v in percentiles(back).items()},
        },
        "loss": {"percent": args.loss, "delay_seconds_each_way": args.delay, **loss},
        "samples_taken": taken,
    }


def main() -> None:
    """Parse the arguments, run the benchmark, print JSON then a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each link cut")
    parser.add_argument("--interval", type=float, default=5.0, help="sync interval")
    parser.add_argument("--loss", type=int, default=20, help="percent of packets dropped")
    parser.add_argument("--delay", type=float, default=0.3, help="seconds added each way")
    parser.add_argument("--loss-seconds", type=float, default=60.0, help="0 skips the loss run")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    link, loss = result["link"], result["loss"]
    print(
        f"link back after a {args.seconds:g} s cut: p50 {link['back_p50_seconds']} s, "
        f"p95 {link['back_p95_seconds']} s (interval {args.interval:g} s); sample delay with "
        f"{args.loss} % loss + {args.delay:g} s: {loss.get('delay_seconds')}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
