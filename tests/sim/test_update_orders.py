"""Virtual devices say in which order each replaced unit was replaced, as the agent does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from signalbeam.protocol.device_v1 import ReportedState
from signalbeam.sim.device import running_state

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def desired(version: str, **web: Any) -> dict[str, Any]:
    bundle = {
        "name": "kiosk",
        "version": version,
        "containers": [
            {"name": "web", "image": f"r/web:{version}", **web},
            {"name": "cache", "image": "r/cache:1"},
        ],
        "apps": [
            {
                "name": "ui",
                "artifact": {"sha256": version[0] * 64},
                "command": ["./ui"],
                "update_order": "start-first",
            }
        ],
    }
    return {"kind": "bundle", "digest": "sha256:" + "0" * 64, "bundle": bundle}


def orders(state: dict[str, Any]) -> dict[str, str | None]:
    return {item["name"]: item.get("update_order") for item in state["items"]}


def test_replaced_units_report_their_order_and_unchanged_ones_keep_theirs() -> None:
    first = running_state(desired("1.0.0"), NOW)
    assert orders(first) == {"web": None, "cache": None, "ui": None}
    second = running_state(desired("2.0.0"), NOW, first)
    assert orders(second) == {"web": "start-first", "cache": None, "ui": "start-first"}
    third = running_state(desired("3.0.0", ports=["8080:80"]), NOW, second)
    assert orders(third) == {"web": "stop-first", "cache": None, "ui": "start-first"}
    # What the server's device API reads.
    parsed = ReportedState.model_validate({"generation": 3, "status": "running", **third})
    assert [item.update_order for item in parsed.items] == ["stop-first", None, "start-first"]
