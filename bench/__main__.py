"""Run the benchmarks (the scenarios arrive with the simulator and benchmarks issue)."""

from __future__ import annotations

import sys

sys.stderr.write("no benchmarks yet: they arrive with the simulator and benchmarks issue\n")
