"""Server-Sent Events: frames out of a stream of text lines, keep-alive comments skipped."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    """One event from the stream: its id (for Last-Event-ID), type and data text."""

    id: str | None
    event: str
    data: str


def frames(lines: Iterable[str]) -> Iterator[Frame]:
    """Frames in arrival order; a blank line ends each one, as the SSE spec says."""
    last_id: str | None = None
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Frame(last_id, event, "\n".join(data))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
