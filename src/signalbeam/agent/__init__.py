"""The SignalBeam agent: the daemon on each device (`signalbeam-agent`)."""

import sys

# httpx imports its own command-line tool (and with it rich and pygments, about 5 MB) whenever
# those happen to be installed. The agent never uses it, and memory is scarce on a small
# device; a None entry makes that optional import fail the way httpx expects and handles.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
