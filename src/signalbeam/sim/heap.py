"""Keep the garbage collector's full collections from stalling a large simulated fleet."""

from __future__ import annotations

import gc

# Young-generation size before a collection (CPython's default is 700), as the server uses.
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Freeze what enrolling built and let request-lived objects die young.

    Thousands of devices are millions of long-lived objects (clients, connections, tasks), and
    with CPython's default thresholds each full collection walks them all: with 7,000 watching
    devices on a busy 2-core machine the simulator spent half its time in the collector and
    its event loop ran seconds late, which it then reported as connect timeouts and latency.
    Frozen objects are skipped by later collections; a larger young generation lets a
    request's short-lived objects be freed before they are promoted.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
