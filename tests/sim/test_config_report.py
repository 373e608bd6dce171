"""Virtual devices report the config their desired state carries as applied, as agents do."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbeam.protocol.device_v1 import ReportedState
from signalbeam.sim.device import running_state
from tests.sim.test_update_orders import desired

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_config_section_is_reported_applied_by_its_digest() -> None:
    spec = {
        **desired("1.0.0"),
        "config": {"layers": [], "secrets": {}, "digest": "sha256:" + "a" * 64},
    }
    reported = ReportedState.model_validate(
        {"generation": 3, "status": "running", **running_state(spec, NOW)}
    )
    assert reported.config is not None
    assert (reported.config.digest, reported.config.status) == ("sha256:" + "a" * 64, "applied")


def test_no_config_section_reports_no_config() -> None:
    reported = ReportedState.model_validate(
        {"status": "running", **running_state(desired("1.0.0"), NOW)}
    )
    assert reported.config is None
