"""What an action did on each device: the result type every action returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Stored nowhere but shown and scripted against: add, never rename.
# `skipped`: the device was not reached (offline, or it has no such unit).
# `pending`: asked; the device confirms later (a new boot id, its units stopped).
Status = Literal["planned", "done", "unchanged", "failed", "skipped", "pending"]


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, planned, would do) on one device."""

    device_id: str
    status: Status
    detail: str
