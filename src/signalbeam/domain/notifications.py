"""Notifications: what a notifier is sent for an incident's transition, signed, retried, grouped.

Pure: the delivery worker renders and schedules with these, and does the I/O itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from signalbeam.domain.alerts import Severity
from signalbeam.domain.errors import InvalidInput

NOTIFIER_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(NOTIFIER_NAME_PATTERN)
SIGNATURE_HEADER = "X-SignalBeam-Signature"
# From this many notices for one notifier, rule and transition within STORM_WINDOW, the rest go
# out grouped: one message at once, then at most one more per SUMMARY_EVERY while the storm
# lasts, so each device is still named within seconds and a site of 1,000 makes a handful.
# A held notice waits up to SUMMARY_EVERY on top of its incident's own delay, so it must stay
# well under the 5 s promised from condition to notification (bench/alerts.py: at 5 s, 300
# devices at once were named p95 7.1 s after T; at 2 s, 3.9 s, with 8 messages for 1,000
# offline and back).
GROUP_AT = 5
STORM_WINDOW = timedelta(seconds=30)
SUMMARY_EVERY = timedelta(seconds=2)
SHOWN_IN_GROUP = 10
# Retries: quickly at first, then less often, for about a day in all; then the delivery is dead.
RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800)
)
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class NotifierKind(StrEnum):
    WEBHOOK = "webhook"  # our JSON, signed
    SLACK = "slack"  # a Slack incoming webhook
    TEAMS = "teams"  # a Microsoft Teams incoming webhook
    EMAIL = "email"  # SMTP


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # every retry failed
    SILENCED = "silenced"  # muted by a silence or maintenance window: logged, not sent


@dataclass(frozen=True)
class Notice:
    """One incident transition to tell a notifier about."""

    incident_id: int
    transition: str  # opened, reopened, acknowledged, resolved
    rule: str
    severity: str
    subject: str
    title: str
    at: datetime
    url: str  # the incident in the dashboard

    def as_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "transition": self.transition,
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "title": self.title,
            "at": self.at.isoformat(),
            "url": self.url,
        }


def check_notifier_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f'notifier name "{name[:80]}" is not valid: use lowercase letters, digits and "-"',
            field="name",
        )
    return name


def check_url(url: str) -> str:
    """A webhook URL must be http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"webhook url {url[:80]!r} is not an http(s) URL; give one such as "
            "https://hooks.example.com/signalbeam",
            field="url",
        )
    return url


def wants(min_severity: str, severity: str) -> bool:
    """Whether a notifier routed from `min_severity` up is told about this severity."""
    return _RANK[Severity(severity)] >= _RANK[Severity(min_severity)]


def sign(key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`: a receiver recomputes and compares it."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed tries; None once the delivery is dead."""
    if attempts > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts - 1]


def _verb(notice: Notice) -> str:
    return {
        "opened": "FIRING",
        "reopened": "FIRING AGAIN",
        "acknowledged": "ACKNOWLEDGED",
        "resolved": "RESOLVED",
    }.get(notice.transition, notice.transition.upper())


def headline(notices: Sequence[Notice]) -> str:
    """One line for one notice, or for a group of them (a site that lost power)."""
    first = notices[0]
    if len(notices) == 1:
        return f"[{_verb(first)}] {first.title} ({first.severity})"
    return f"[{_verb(first)}] {first.rule}: {len(notices)} subjects ({first.severity})"


def text(notices: Sequence[Notice]) -> str:
    """The body of a chat message or email."""
    lines = [headline(notices)]
    for notice in notices[:SHOWN_IN_GROUP]:
        lines.append(f"- {notice.subject}: {notice.title} {notice.url}")
    if len(notices) > SHOWN_IN_GROUP:
        lines.append(f"... and {len(notices) - SHOWN_IN_GROUP} more")
    return "\n".join(lines)


def webhook_body(notices: Sequence[Notice]) -> dict[str, Any]:
    """Our own JSON: one notice, or a group with its count."""
    if len(notices) == 1:
        return {"type": "incident", **notices[0].as_json()}
    return {
        "type": "incident_group",
        "rule": notices[0].rule,
        "transition": notices[0].transition,
        "count": len(notices),
        "incidents": [n.as_json() for n in notices],
    }


def chat_body(kind: NotifierKind, notices: Sequence[Notice]) -> dict[str, Any]:
    """A Slack- or Teams-compatible incoming-webhook body."""
    if kind is NotifierKind.SLACK:
        return {"text": text(notices)}
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": headline(notices),
        "title": headline(notices),
        "text": text(notices).replace("\n", "\n\n"),
    }


class Plan(StrEnum):
    SINGLE = "single"  # one message per notice
    GROUP = "group"  # one message for all of them
    HOLD = "hold"  # a grouped message went out moments ago: wait for the next summary


@dataclass
class Storm:
    """What went to one notifier for one rule and transition lately."""

    sent: list[tuple[datetime, int]]
    grouped_at: datetime | None = None


class Storms:
    """Decides, per notifier, rule and transition, whether due notices go out one by one or
    grouped, so 1,000 devices going offline at once make a few messages, not 1,000."""

    def __init__(self) -> None:
        self._storms: dict[tuple[int, str, str], Storm] = {}

    def plan(self, key: tuple[int, str, str], due: int, now: datetime) -> Plan:
        storm = self._storms.get(key)
        recent = 0
        if storm is not None:
            storm.sent = [(at, n) for at, n in storm.sent if now - at < STORM_WINDOW]
            recent = sum(n for _, n in storm.sent)
        if recent + due < GROUP_AT:
            return Plan.SINGLE
        if storm and storm.grouped_at is not None and now - storm.grouped_at < SUMMARY_EVERY:
            return Plan.HOLD
        return Plan.GROUP

    def summary_at(self, key: tuple[int, str, str]) -> datetime | None:
        """When a storm's held notices go out as its next summary (None: no storm)."""
        storm = self._storms.get(key)
        if storm is None or storm.grouped_at is None:
            return None
        return storm.grouped_at + SUMMARY_EVERY

    def sent(self, key: tuple[int, str, str], count: int, plan: Plan, now: datetime) -> None:
        storm = self._storms.setdefault(key, Storm(sent=[]))
        storm.sent.append((now, count))
        if plan is Plan.GROUP:
            storm.grouped_at = now
