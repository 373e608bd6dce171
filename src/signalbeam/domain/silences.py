"""Silences and maintenance windows: times when notifications are muted, incidents still open.

A silence covers the devices its selector matches (all when it has none) and one rule or all
rules. It is either one span (`for 2h`, from now or from `starts`) or a recurring maintenance
window written as rollouts write theirs (`Sat,Sun 00:00-24:00`, `Mon-Fri 01:00-05:00 UTC`), in
the device's local time unless it ends in UTC, optionally until an end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.maintenance import MaintenanceWindow, parse_windows, window_open
from signalbeam.domain.selectors import Selector, parse_selector

MAX_SPAN = timedelta(days=90)


@dataclass(frozen=True)
class Silence:
    """When and what it mutes."""

    starts_at: datetime
    ends_at: datetime | None  # None: a recurring window with no end
    windows: tuple[MaintenanceWindow, ...] = ()
    selector: Selector | None = None
    rule: str | None = None

    def mutes(
        self, at: datetime, rule: str, labels: Mapping[str, str] | None, timezone: str | None
    ) -> bool:
        """Whether a notice of `rule` about a device with `labels` at `at` stays unsent.

        Rollout rules' notices (no device) are muted only by silences without a selector.
        """
        if at < self.starts_at or (self.ends_at is not None and at >= self.ends_at):
            return False
        if self.rule is not None and self.rule != rule:
            return False
        if self.selector is not None and (labels is None or not self.selector.matches(labels)):
            return False
        return not self.windows or window_open(self.windows, at, timezone)


def check_silence(
    now: datetime,
    for_: str | None,
    window: str | None,
    until: datetime | None,
    selector: str | None,
    rule: str | None,
) -> Silence:
    """A silence from a request's parts; InvalidInput names the field to fix."""
    windows = parse_windows(window, field="window") if window else ()
    if for_ is not None and until is not None:
        raise InvalidInput("give `for` or `until`, not both", field="until")
    if for_ is not None:
        span = parse_duration(for_, field="for")
        if not timedelta(0) < span <= MAX_SPAN:
            raise InvalidInput("`for` must be more than 0s and at most 90d", field="for")
        until = now + span
    if until is not None and until <= now:
        raise InvalidInput("`until` is in the past", field="until")
    if until is None and not windows:
        raise InvalidInput(
            "say how long: `for` (such as 2h), `until`, or a recurring `window`", field="for"
        )
    parsed = parse_selector(selector) if selector else None
    return Silence(now, until, windows, parsed if parsed and parsed.requirements else None, rule)
