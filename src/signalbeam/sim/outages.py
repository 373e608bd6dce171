"""Outages: a block of a simulated fleet goes silent at a set time, as if a site lost power.

`--outage COUNT:FOR[@AT]` (e.g. `300:60s@2m`, or `25%:1m`) silences COUNT devices, AT after the
fleet started (after enrolling; default one minute), for FOR, then brings them back. A silent
device drops its connections and sends nothing, so the server sees it go offline the way it
sees a device that lost power. Each outage takes the next block of devices in id order, so two
outages are two sites: `sim-00000..sim-00299`, then the next COUNT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from signalbeam.domain.durations import parse_duration
from signalbeam.domain.errors import DomainError

DEFAULT_AT_SECONDS = 60.0
SPEC_HELP = "COUNT:FOR[@AT], e.g. 300:60s@2m or 25%:1m"


class OutageError(ValueError):
    """An outage spec that cannot be read; the message shows how to write one."""


@dataclass(frozen=True)
class Outage:
    """COUNT devices (or a share of the fleet) silent from AT for FOR seconds."""

    count: int | None  # how many devices; None when given as a share
    share: float | None  # a fraction of the fleet; None when given as a count
    lasts: float
    at: float = DEFAULT_AT_SECONDS

    def size(self, fleet: int) -> int:
        """How many of a fleet of `fleet` devices this outage silences."""
        if self.count is not None:
            return min(self.count, fleet)
        assert self.share is not None
        return round(fleet * self.share)


def parse_outage(text: str) -> Outage:
    """`300:60s@2m` → 300 devices silent from 2 min after the start, for 60 s."""
    what, _, when = text.strip().partition("@")
    count_text, colon, lasts_text = what.partition(":")
    if not colon or not count_text or not lasts_text:
        raise OutageError(f"--outage {text!r} is not {SPEC_HELP}")
    count, share = _count(count_text, text)
    lasts = _seconds(lasts_text, text)
    if lasts <= 0:
        raise OutageError(f"--outage {text!r}: FOR must be longer than 0s")
    at = _seconds(when, text) if when else DEFAULT_AT_SECONDS
    return Outage(count=count, share=share, lasts=lasts, at=at)


def _count(text: str, spec: str) -> tuple[int | None, float | None]:
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError(text)
            return None, share
        count = int(text)
        if count < 1:
            raise ValueError(text)
        return count, None
    except ValueError:
        raise OutageError(
            f"--outage {spec!r}: COUNT must be a number of devices (300) or a share (25%)"
        ) from None


def _seconds(text: str, spec: str) -> float:
    try:
        return parse_duration(text, field="--outage").total_seconds()
    except DomainError as err:
        raise OutageError(f"--outage {spec!r}: {err.detail}") from err


def blocks(outages: Sequence[Outage], device_ids: Sequence[str]) -> list[list[str]]:
    """The devices each outage silences: consecutive blocks in id order, wrapping around."""
    out, start, total = [], 0, len(device_ids)
    for outage in outages:
        size = outage.size(total)
        out.append([device_ids[(start + i) % total] for i in range(size)])
        start = (start + size) % total if total else 0
    return out


class Switchable(Protocol):
    """What an outage needs of a fleet: take devices offline and bring them back."""

    def set_offline(self, which: Sequence[str]) -> list[str]: ...

    def set_online(self, which: Sequence[str]) -> list[str]: ...


async def run_outages(
    fleet: Switchable,
    outages: Sequence[Outage],
    device_ids: Sequence[str],
    say: Callable[[str], None],
) -> None:
    """Run every outage on its schedule (seconds from now); `say` reports each change."""
    async with asyncio.TaskGroup() as group:
        for outage, ids in zip(outages, blocks(outages, device_ids), strict=True):
            group.create_task(_one(fleet, outage, ids, say))


async def _one(
    fleet: Switchable, outage: Outage, ids: list[str], say: Callable[[str], None]
) -> None:
    await asyncio.sleep(outage.at)
    silent = fleet.set_offline(ids)
    if not silent:
        say(f"outage: none of {_span(ids)} was online to silence")
        return
    say(f"outage: {len(silent)} devices ({_span(silent)}) silent for {outage.lasts:g}s")
    await asyncio.sleep(outage.lasts)
    back = fleet.set_online(silent)
    say(f"outage over: {len(back)} devices ({_span(silent)}) back")


def _span(ids: Sequence[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1]}" if ids else "no devices"
