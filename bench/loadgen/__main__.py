"""`python -m bench.loadgen SPEC_JSON`: run one load and print JSON lines for the runner."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from bench.loadgen.common import emit
from bench.loadgen.push import run_push
from bench.loadgen.sse import run_sse
from bench.loadgen.syncs import run_ceiling, run_ingest

LOADS: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]] = {
    "sync-ingest": run_ingest,
    "ceiling": run_ceiling,
    "push-latency": run_push,
    "sse": run_sse,
}


def raise_file_limit() -> None:
    """Thousands of held connections need thousands of file descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> int:
    """Run the load named in the spec; exit 1 with an `error` line when it fails."""
    spec: dict[str, Any] = orjson.loads(sys.argv[1])
    raise_file_limit()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            result = runner.run(LOADS[spec["kind"]](spec))
    except Exception as err:
        emit("error", message=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        return 1
    emit("result", result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
