"""Notifications: signed bodies, retries for about a day, storms grouped into few messages."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.notifications import (
    GROUP_AT,
    STORM_WINDOW,
    SUMMARY_EVERY,
    Notice,
    Plan,
    Storms,
    check_url,
    headline,
    retry_at,
    sign,
    wants,
    webhook_body,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KEY = (1, "device-offline", "opened")


def notice(subject: str) -> Notice:
    title = f"{subject}: device offline for 5m"
    return Notice(1, "opened", "device-offline", "critical", subject, title, NOW, "http://x/1")


def test_the_signature_is_an_hmac_of_timestamp_and_body() -> None:
    body = b'{"type":"incident"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == f"t=1700000000,v1={expected}"


def test_retries_back_off_for_about_a_day_then_stop() -> None:
    waits = []
    attempts = 1
    while (at := retry_at(attempts, NOW)) is not None:
        waits.append(at - NOW)
        attempts += 1
    assert waits[0] == timedelta(seconds=10) and waits == sorted(waits)
    assert timedelta(hours=20) < sum(waits, timedelta()) < timedelta(hours=30)


def test_routing_by_severity_and_urls_that_are_not_http_are_refused() -> None:
    assert wants("warning", "critical") and not wants("critical", "warning")
    with pytest.raises(InvalidInput) as refused:
        check_url("file:///etc/passwd")
    assert refused.value.field == "url"


def test_a_storm_goes_out_as_one_message_then_one_summary_per_window() -> None:
    storms = Storms()
    assert storms.plan(KEY, 1, NOW) is Plan.SINGLE
    storms.sent(KEY, 1, Plan.SINGLE, NOW)
    assert storms.plan(KEY, GROUP_AT + 100, NOW) is Plan.GROUP
    storms.sent(KEY, GROUP_AT + 100, Plan.GROUP, NOW)
    soon = NOW + SUMMARY_EVERY / 2
    assert storms.plan(KEY, 300, soon) is Plan.HOLD  # still storming: wait for the summary
    later = NOW + SUMMARY_EVERY
    assert storms.plan(KEY, 300, later) is Plan.GROUP
    assert storms.plan((2, "device-offline", "opened"), 1, soon) is Plan.SINGLE  # another notifier
    quiet = later + STORM_WINDOW * 2
    assert storms.plan(KEY, 1, quiet) is Plan.SINGLE


def test_a_group_names_the_rule_and_counts_its_subjects() -> None:
    group = [notice(f"site-a-{n}") for n in range(12)]
    assert headline(group) == "[FIRING] device-offline: 12 subjects (critical)"
    body = webhook_body(group)
    assert (body["type"], body["count"], len(body["incidents"])) == ("incident_group", 12, 12)
    assert headline(group[:1]) == "[FIRING] site-a-0: device offline for 5m (critical)"
