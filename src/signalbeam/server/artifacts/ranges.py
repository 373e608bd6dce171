"""HTTP Range requests (RFC 9110 §14) for one byte range, as artifact downloads use them."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The Range header cannot be served for this blob; the message says why."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes `[start, end)` of a blob of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start

    @property
    def content_range(self) -> str:
        """The `Content-Range` value of a 206 answer."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str, size: int) -> ByteRange:
    """The range asked for by `bytes=a-b`, `bytes=a-` or `bytes=-n`, clipped to the blob."""
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        raise RangeNotSatisfiable(
            f"cannot read Range {header[:80]!r}; ask for one range such as bytes=1000- "
            "or bytes=0-499"
        )
    first, last = match.groups()
    if not first:
        if not last or int(last) == 0:
            raise RangeNotSatisfiable("a suffix range needs a length above 0, as in bytes=-500")
        return ByteRange(max(0, size - int(last)), size, size)
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        raise RangeNotSatisfiable(f"Range {header[:80]!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(
            f"Range starts at byte {start} but the artifact has {size} bytes; "
            "download it again from the start"
        )
    return ByteRange(start, end, size)
