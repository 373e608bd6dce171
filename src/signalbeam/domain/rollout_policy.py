"""Rollout policy: waves, gates, timing and limits, parsed from what people type.

Wave sizes are cumulative: `1,10%,50%,100%` means one canary, then up to a tenth of the
target in total, then half, then the rest. Every wave takes at least one new device while any
remain, and the last wave takes everything left, so a wave is never empty unless the target is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from signalbeam.domain.durations import DurationTooLong, parse_duration
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.maintenance import MaintenanceWindow, parse_windows

MAX_WAVES = 100
MAX_RETRIES = 20
# Longer timings are typos (or overflow the clock), not policies.
MAX_DURATION = timedelta(days=365)
_COUNT = re.compile(r"\d+")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")


@dataclass(frozen=True)
class Amount:
    """A number of devices (`3`) or a share of some total (`30%`)."""

    value: float
    percent: bool = False

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else str(int(self.value))

    def of(self, total: int) -> int:
        """How many devices this amount means out of `total`; shares round up."""
        if not self.percent:
            return int(self.value)
        # Rounding first keeps 30% of 10 at exactly 3 despite binary floating point.
        return math.ceil(round(self.value * total / 100, 9))


class OnFailure(StrEnum):
    """What a rollout does when a gate fails."""

    ROLLBACK = "rollback"
    PAUSE = "pause"


class OfflinePolicy(StrEnum):
    """What a wave does about devices that are offline when they are due."""

    SKIP = "skip"  # wait up to `offline_wait`, then skip; retry if they come back
    WAIT = "wait"  # wait for them, however long it takes


DEFAULT_WAVES = (Amount(1), Amount(10, True), Amount(50, True), Amount(100, True))


@dataclass(frozen=True)
class RolloutPolicy:
    """How a rollout proceeds; the defaults are the safe choice for a fleet nobody watches."""

    waves: tuple[Amount, ...] = DEFAULT_WAVES
    success_threshold: Amount = Amount(100, True)
    failure_threshold: Amount = Amount(30, True)
    on_failure: OnFailure = OnFailure.ROLLBACK
    soak: timedelta = timedelta(seconds=60)
    apply_timeout: timedelta = timedelta(minutes=15)
    offline: OfflinePolicy = OfflinePolicy.SKIP
    offline_wait: timedelta = timedelta(minutes=10)
    max_retries: int = 3
    retry_backoff: timedelta = timedelta(seconds=30)
    max_parallel: int | None = None
    windows: tuple[MaintenanceWindow, ...] = field(default=())
    dynamic: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; durations in seconds, the rest as people write them."""
        return {
            "waves": format_waves(self.waves),
            "success_threshold": str(self.success_threshold),
            "failure_threshold": str(self.failure_threshold),
            "on_failure": self.on_failure.value,
            "soak_seconds": self.soak.total_seconds(),
            "apply_timeout_seconds": self.apply_timeout.total_seconds(),
            "offline": self.offline.value,
            "offline_wait_seconds": self.offline_wait.total_seconds(),
            "max_retries": self.max_retries,
            "retry_backoff_seconds": self.retry_backoff.total_seconds(),
            "max_parallel": self.max_parallel,
            "window": "; ".join(str(window) for window in self.windows),
            "dynamic": self.dynamic,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        """The inverse of `to_dict`."""
        return cls(
            waves=parse_waves(data["waves"]),
            success_threshold=parse_threshold(data["success_threshold"], "success_threshold", 0),
            failure_threshold=parse_threshold(data["failure_threshold"], "failure_threshold", 1),
            on_failure=OnFailure(data["on_failure"]),
            soak=timedelta(seconds=data["soak_seconds"]),
            apply_timeout=timedelta(seconds=data["apply_timeout_seconds"]),
            offline=OfflinePolicy(data["offline"]),
            offline_wait=timedelta(seconds=data["offline_wait_seconds"]),
            max_retries=data["max_retries"],
            retry_backoff=timedelta(seconds=data["retry_backoff_seconds"]),
            max_parallel=data["max_parallel"],
            windows=parse_windows(data["window"]),
            dynamic=data["dynamic"],
        )


def parse_policy(
    *,
    waves: str | None = None,
    success_threshold: str | None = None,
    failure_threshold: str | None = None,
    on_failure: str | None = None,
    soak: str | None = None,
    apply_timeout: str | None = None,
    offline: str | None = None,
    offline_wait: str | None = None,
    max_retries: int | None = None,
    retry_backoff: str | None = None,
    max_parallel: int | None = None,
    window: str | None = None,
    dynamic: bool = False,
) -> RolloutPolicy:
    """Build a policy from CLI/API inputs; `None` keeps the default, errors name the field."""
    given = {
        "waves": _given(waves, parse_waves),
        "success_threshold": _given(success_threshold, _success_threshold),
        "failure_threshold": _given(failure_threshold, _failure_threshold),
        "on_failure": _given(on_failure, lambda text: _choice(OnFailure, text, "on_failure")),
        "soak": _given(soak, lambda text: _duration(text, "soak", allow_zero=True)),
        "apply_timeout": _given(apply_timeout, lambda text: _duration(text, "apply_timeout")),
        "offline": _given(offline, lambda text: _choice(OfflinePolicy, text, "offline")),
        "offline_wait": _given(
            offline_wait, lambda text: _duration(text, "offline_wait", allow_zero=True)
        ),
        "max_retries": _given(max_retries, _max_retries),
        "retry_backoff": _given(
            retry_backoff, lambda text: _duration(text, "retry_backoff", allow_zero=True)
        ),
        "max_parallel": _given(max_parallel, _max_parallel),
        "windows": _given(window, parse_windows),
    }
    changes = {name: value for name, value in given.items() if value is not None}
    return replace(RolloutPolicy(dynamic=dynamic), **changes)


def _given(value: Any, parse: Any) -> Any:
    return None if value is None else parse(value)


def parse_waves(text: str, *, field: str = "waves") -> tuple[Amount, ...]:
    """Parse `1,10%,50%,100%`: counts and shares of the target, cumulative, in order."""
    items = [item.strip() for item in text.split(",")]
    if items == [""]:
        raise InvalidInput('waves are empty; write them like "1,10%,50%,100%"', field=field)
    if len(items) > MAX_WAVES:
        raise InvalidInput(f"{len(items)} waves; at most {MAX_WAVES} are allowed", field=field)
    waves = tuple(parse_amount(item, field=field, minimum=1) for item in items)
    for kind in (True, False):
        values = [wave.value for wave in waves if wave.percent is kind]
        if values != sorted(values):
            raise InvalidInput(
                f'waves "{text}" shrink; sizes are cumulative ("50%" means half the target '
                'in total), so write them in growing order like "1,10%,50%,100%"',
                field=field,
            )
    return waves


def format_waves(waves: Sequence[Amount]) -> str:
    """The text `parse_waves` reads back."""
    return ",".join(str(wave) for wave in waves)


def parse_threshold(text: str, field: str, minimum: int) -> Amount:
    """A gate: a share of a wave's reachable devices (`30%`) or a number of devices (`3`)."""
    return parse_amount(text, field=field, minimum=minimum)


def parse_amount(text: str, *, field: str, minimum: int = 1) -> Amount:
    """`3` or `30%`, at least `minimum` (as a count or a percentage), shares at most 100%."""
    cleaned = text.strip()
    share = _PERCENT.fullmatch(cleaned)
    if share is None and _COUNT.fullmatch(cleaned) is None:
        raise InvalidInput(
            f'"{text}" is neither a number of devices nor a percentage; write it like 3 or 30%',
            field=field,
        )
    amount = Amount(float(share[1]), True) if share else Amount(int(cleaned))
    if amount.value < minimum or (amount.percent and amount.value > 100):
        low = f"{minimum}%" if amount.percent else str(minimum)
        high = "100%" if amount.percent else "any number"
        raise InvalidInput(f'"{text}" is out of range; use {low} to {high}', field=field)
    return amount


def wave_quota(waves: Sequence[Amount], index: int, total: int, taken: int) -> int:
    """How many new devices wave `index` takes when `taken` of `total` are already in waves."""
    remaining = total - taken
    if remaining <= 0:
        return 0
    if index >= len(waves) - 1:
        return remaining
    return max(1, min(total, waves[index].of(total)) - taken)


def plan_waves(device_ids: Sequence[str], waves: Sequence[Amount]) -> list[list[str]]:
    """Split the target (in its stable order, duplicates dropped) into non-empty waves."""
    if not waves:
        raise ValueError("a rollout needs at least one wave")
    ordered = list(dict.fromkeys(device_ids))
    planned: list[list[str]] = []
    taken = 0
    for index in range(len(waves)):
        count = wave_quota(waves, index, len(ordered), taken)
        if count:
            planned.append(ordered[taken : taken + count])
            taken += count
    return planned


def _success_threshold(text: str) -> Amount:
    return parse_threshold(text, "success_threshold", 0)


def _failure_threshold(text: str) -> Amount:
    return parse_threshold(text, "failure_threshold", 1)


def _duration(text: str, field: str, *, allow_zero: bool = False) -> timedelta:
    try:
        value = parse_duration(text, field=field)
    except (OverflowError, DurationTooLong):
        value = MAX_DURATION * 2
    if value > MAX_DURATION:
        raise InvalidInput(f'{field} "{text}" is longer than a year; use at most 365d', field=field)
    if not allow_zero and not value:
        raise InvalidInput(f'{field} "{text}" must be longer than 0s', field=field)
    return value


def _choice(kind: type[OnFailure] | type[OfflinePolicy], text: str, field: str) -> Any:
    try:
        return kind(text.strip().lower())
    except ValueError:
        options = " or ".join(member.value for member in kind)
        raise InvalidInput(f'{field} "{text}" is not one of {options}', field=field) from None


def _max_retries(value: int) -> int:
    if not 0 <= value <= MAX_RETRIES:
        raise InvalidInput(
            f"max_retries {value} is out of range; use 0 to {MAX_RETRIES}", field="max_retries"
        )
    return value


def _max_parallel(value: int) -> int:
    if value < 1:
        raise InvalidInput(
            f"max_parallel {value} would never update a device; use 1 or more, or leave it out "
            "for no limit",
            field="max_parallel",
        )
    return value
