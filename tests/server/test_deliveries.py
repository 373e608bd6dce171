"""The delivery worker's plan for one round: what is sent now and what waits for a summary."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbeam.domain.notifications import SUMMARY_EVERY, Storms
from signalbeam.server.db.models import Delivery
from signalbeam.server.workers.deliveries import messages

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
NOTIFIER = 7


def owed(first: int, count: int, rule: str = "device-offline") -> list[Delivery]:
    notice = {"rule": rule, "transition": "opened"}
    return [Delivery(id=first + n, notifier_id=NOTIFIER, notice=notice) for n in range(count)]


def test_notices_held_in_a_storm_wait_for_its_summary_and_others_still_go() -> None:
    storms = Storms()
    first = messages(NOTIFIER, owed(1, 600), storms, NOW)
    assert [len(m) for m in first.send] == [600] and not first.held  # one grouped message

    soon = NOW + SUMMARY_EVERY / 2
    later = messages(NOTIFIER, owed(601, 400) + owed(2000, 1, "rollout-rolled-back"), storms, soon)
    # The storm's newcomers are held until its summary, not left due to fill every round...
    assert len(later.held) == 400
    assert {until for _, until in later.held} == {NOW + SUMMARY_EVERY}
    # ...while a notice of another rule goes out at once.
    assert [[d.id for d in m] for m in later.send] == [[2000]]

    summary = messages(NOTIFIER, [d for d, _ in later.held], storms, NOW + SUMMARY_EVERY)
    assert [len(m) for m in summary.send] == [400] and not summary.held  # all in one summary
