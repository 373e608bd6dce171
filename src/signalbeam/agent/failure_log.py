"""A failed update's evidence: which unit failed, and the last lines it wrote."""

from __future__ import annotations

import logging
from typing import Any

from signalbeam.agent.spec import UnitSpec
from signalbeam.agent.units import UnitDriver, UnitError
from signalbeam.agent.wire import FAILURE_LOG_LINE_CHARS, FAILURE_LOG_LINES

log = logging.getLogger(__name__)


class UnitFailed(UnitError):
    """A unit of the version being applied did not start or did not become healthy."""

    def __init__(self, unit: UnitSpec, cause: UnitError) -> None:
        super().__init__(cause.reason, transient=cause.transient)
        self.unit = unit


async def last_lines(driver: UnitDriver[Any], name: str) -> list[str]:
    """The last lines unit `name` wrote, cut to fit a report; [] when they cannot be read.

    Called before a rollback replaces the unit: once the failed container is removed, its
    output is gone with it.
    """
    try:
        text = await driver.logs(name, FAILURE_LOG_LINES)
    except (UnitError, OSError) as err:
        # The reason still goes out; only the evidence beside it is missing.
        log.warning("could not read the last output of %s: %s", name, err)
        return []
    return clip(text)


def clip(text: str) -> list[str]:
    """At most the last `FAILURE_LOG_LINES` lines, each at most `FAILURE_LOG_LINE_CHARS`.

    Lines end at newlines only: a carriage return (a progress bar redrawing itself) stays
    inside its line instead of turning one line into dozens.
    """
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return [_fit(line) for line in lines[-FAILURE_LOG_LINES:]]


def _fit(line: str) -> str:
    if len(line) <= FAILURE_LOG_LINE_CHARS:
        return line
    return line[: FAILURE_LOG_LINE_CHARS - 1] + "…"
