"""Turning command-line text (durations, labels, times) into what the API expects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from signalbeam.cli.output import CliError
from signalbeam.domain.durations import format_duration, parse_duration
from signalbeam.domain.errors import DomainError
from signalbeam.domain.selectors import parse_label, validate_label_key


def expires_in(text: str, option: str = "--expires") -> str | None:
    """`never` as None, else a duration such as `24h` in its shortest form."""
    if text.strip().lower() == "never":
        return None
    try:
        return format_duration(parse_duration(text, field=option))
    except DomainError as err:
        raise CliError(f"{option}: {err.detail}, or never") from err


def duration(text: str, option: str) -> str:
    """A duration such as `1m`, checked here so a typo fails before any request."""
    try:
        return format_duration(parse_duration(text, field=option))
    except DomainError as err:
        raise CliError(f"{option}: {err.detail}") from err


def labels(pairs: Iterable[str]) -> dict[str, str]:
    """`k=v` texts as a dict; a repeated key keeps its last value."""
    try:
        return dict(parse_label(pair) for pair in pairs)
    except DomainError as err:
        raise CliError(err.detail) from err


def label_changes(changes: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """`k=v` (set) and `k-` (remove) texts as the labels PATCH body's `set` and `remove`."""
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    try:
        for change in changes:
            if "=" not in change and change.endswith("-"):
                validate_label_key(change[:-1])
                to_remove.append(change[:-1])
            else:
                key, value = parse_label(change)
                to_set[key] = value
    except DomainError as err:
        raise CliError(f"{err.detail}; write k=v to set a label, k- to remove it") from err
    both = sorted(set(to_set) & set(to_remove))
    if both:
        raise CliError(f"label {', '.join(both)} is both set and removed; pick one")
    return to_set, to_remove


def since(text: str, option: str = "--since") -> str:
    """A duration back from now (`1h`) or a time (`2024-05-01T12:00`) as an ISO timestamp."""
    now = datetime.now(UTC)
    try:
        return (now - parse_duration(text, field=option)).isoformat()
    except DomainError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise CliError(
            f'{option} "{text}" is neither a duration (30m, 1h, 7d) '
            "nor a time (2024-05-01T12:00 or 2024-05-01T12:00:00+02:00)"
        ) from err
    # A time without a zone means the operator's own local time.
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()
