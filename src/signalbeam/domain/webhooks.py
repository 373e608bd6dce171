"""Webhooks: which recorded events a subscription is sent, and the JSON body it receives.

Pure: the webhook matcher reads the event log and queues deliveries with these; the delivery
worker signs and sends them like any notification.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.model import EventType
from signalbeam.domain.notifications import NOTIFIER_NAME_PATTERN
from signalbeam.domain.selectors import Selector

EVENT_TYPES = frozenset(t.value for t in EventType)
# Agents report their own event types (agent.degraded, ...), always under "agent.".
AGENT_PREFIX = "agent."
_AGENT_TYPE = r"agent\.[a-z0-9_.]{1,57}"
FAMILIES = frozenset({t.split(".", 1)[0] for t in EVENT_TYPES} | {"agent"})
MAX_EVENT_TYPES = 50
# What the API schema states for one entry; `check_event_types` enforces it with a message
# that lists the known types.
EVENT_PATTERN = (
    r"^(\*|("
    + "|".join(re.escape(f) for f in sorted(FAMILIES))
    + r")\.\*|"
    + _AGENT_TYPE
    + "|"
    + "|".join(re.escape(t) for t in sorted(EVENT_TYPES))
    + ")$"
)
_EVENT = re.compile(EVENT_PATTERN)
# A host name or an IPv6 literal, an optional port, then any path: what `urlsplit` reads
# without surprises (a lone "[" makes it raise).
URL_PATTERN = r"^https?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$"
_URL = re.compile(URL_PATTERN)
TEST_EVENT = "webhook.test"
# Webhooks and notifiers share one table and so one set of names.
_NAME = re.compile(NOTIFIER_NAME_PATTERN)


def check_event_types(patterns: Iterable[str]) -> tuple[str, ...]:
    """The subscription's event types, deduplicated in order; unknown ones are refused."""
    found = tuple(dict.fromkeys(patterns))
    if not found:
        raise InvalidInput(
            'a webhook needs at least one event type, such as "device.*" or "rollout.completed"',
            field="events",
        )
    unknown = [p for p in found if not _EVENT.fullmatch(p)]
    if unknown:
        raise InvalidInput(
            f"unknown event type {', '.join(u[:64] for u in unknown[:5])}; use a known type, "
            f"a family such as device.* or * for all; families: {', '.join(sorted(FAMILIES))}; "
            f"types: {', '.join(sorted(EVENT_TYPES))}",
            field="events",
        )
    return found


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host, which the delivery worker can POST to."""
    try:
        host = urlsplit(url).hostname if _URL.fullmatch(url) else None
    except ValueError:  # a bracketed host that is no IPv6 address
        host = None
    if not host:
        raise InvalidInput(
            f"webhook url {url[:80]!r} is not an http(s) URL; give one such as "
            "https://hooks.example.com/signalbeam",
            field="url",
        )
    return url


def wants_type(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an event of this type is one the patterns subscribe to."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True)
class EventSeen:
    """A recorded event, with the device it concerns when there is one."""

    id: int
    type: str
    actor: str
    message: str
    data: Mapping[str, Any]
    created_at: str  # ISO 8601
    device_id: str | None = None
    device_name: str | None = None
    device_labels: Mapping[str, str] | None = None


def wants(patterns: Sequence[str], selector: Selector | None, event: EventSeen) -> bool:
    """Whether a subscription is sent this event: its type is subscribed and, when the
    subscription has a selector, the event concerns a device the selector matches."""
    if not wants_type(patterns, event.type):
        return False
    if selector is None:
        return True
    return event.device_labels is not None and selector.matches(event.device_labels)


def body(subscription: str, event: EventSeen) -> dict[str, Any]:
    """What a receiver is sent: the event, without its tenant, and the subscription's name."""
    return {
        "type": "event",
        "subscription": subscription,
        "event": {
            "id": event.id,
            "type": event.type,
            "created_at": event.created_at,
            "actor": event.actor,
            "message": event.message,
            "device_id": event.device_id,
            "device_name": event.device_name,
            "data": dict(event.data),
        },
    }


def joined(patterns: Sequence[str]) -> str:
    """How the patterns are stored: one text, comma-separated."""
    return ",".join(patterns)


def split(stored: str) -> tuple[str, ...]:
    """The stored patterns, as a list again."""
    return tuple(p for p in stored.split(",") if p)


def check_webhook_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f'webhook name "{name[:80]}" is not valid: use lowercase letters, digits and "-", '
            "such as ops-events",
            field="name",
        )
    return name
