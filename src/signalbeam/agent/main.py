"""The `signalbeam-agent` command (the agent arrives with its own issue)."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the `signalbeam-agent` console script."""
    sys.stderr.write("error: signalbeam-agent is not built yet; see the agent issue\n")
    raise SystemExit(2)
