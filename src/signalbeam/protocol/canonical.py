"""Canonical JSON: the exact bytes that bundle digests and signatures cover.

It lives apart from the pydantic models so the agent, which must produce the very same
bytes to check a digest or a signature, can use it without loading pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the bytes digests and signatures cover."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
