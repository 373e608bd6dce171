"""`python -m bench`: run the benchmarks; JSON on stdout (and bench/results/latest.json), a table on stderr."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import scenarios
from bench.report import table
from signalbeam import __version__

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario", action="append", choices=scenarios.NAMES, help="repeatable; default: all"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="smaller and shorter runs")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(scenario, backend) pairs in run order; the agent footprint needs no database."""
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    pairs: list[tuple[str, str | None]] = []
    for name in args.scenario or scenarios.NAMES:
        if name in scenarios.DATABASE_SCENARIOS:
            pairs += [(name, backend) for backend in backends]
        else:
            pairs.append((name, None))
    return pairs


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def raise_file_limit() -> None:
    """Servers started from here inherit it: thousands of held connections need descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> int:
    """Run the planned scenarios and report; exit 1 only when a scenario failed to run."""
    args = parse(argv)
    raise_file_limit()
    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    started, began = datetime.now(UTC), time.monotonic()
    report: dict[str, Any] = {
        "signalbeam": __version__,
        "started_at": started.isoformat(),
        "quick": args.quick,
        "machine": machine(),
        "method": {
            "server": "one `signalbeam server` process per scenario, fresh database each",
            "load": "a separate process: one uvloop event loop, a raw HTTP/1.1 keep-alive "
            "client, pre-built orjson bodies",
            "cpu_percent": "process CPU: 100 = one core busy; machine CPU: 100 = all cores busy",
            "sync_latency": "from handing the request to the client (incl. connecting) to the "
            "whole response; schedule lag is reported separately",
        },
        "sizes": sizes.__dict__,
        "scenarios": [scenarios.run(name, backend, sizes) for name, backend in plan(args)],
    }
    report["seconds"] = round(time.monotonic() - began, 1)
    body = orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_bytes(body)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    sys.stderr.write("\n" + table(report["scenarios"]) + "\n")
    return 1 if any(s["status"] == "failed" for s in report["scenarios"]) else 0


if __name__ == "__main__":
    sys.exit(main())
