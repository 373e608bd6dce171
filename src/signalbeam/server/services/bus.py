"""In-process fan-out of committed events to live subscribers (SSE streams, watchers)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

EventPayload = dict[str, Any]


class Subscription:
    """One subscriber's bounded queue; a subscriber that falls too far behind is cut off."""

    def __init__(self, bus: EventBus, tenant_id: int, maxsize: int) -> None:
        self._bus = bus
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[EventPayload | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, payload: EventPayload) -> None:
        """Queue an event, or mark the subscription lost when its queue is full."""
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            # A slow reader must not hold memory or slow publishers; it reconnects
            # with Last-Event-ID and replays what it missed from the database.
            self.overflowed = True
            self._bus.unsubscribe(self)

    async def get(self) -> EventPayload | None:
        """The next event; None once the subscription is closed or cut off."""
        if self.overflowed and self.queue.empty():
            return None
        return await self.queue.get()

    def close(self) -> None:
        """Stop this subscription."""
        self._bus.unsubscribe(self)


class EventBus:
    """Publish-subscribe per tenant, in this process only (NATS carries it across replicas)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)
        self._queue_size = queue_size

    def subscribe(self, tenant_id: int) -> Subscription:
        """A new subscription to one tenant's events."""
        subscription = Subscription(self, tenant_id, self._queue_size)
        self._subscribers[tenant_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription; safe to call twice."""
        self._subscribers[subscription.tenant_id].discard(subscription)

    def publish(self, tenant_id: int, payload: EventPayload) -> None:
        """Hand an event to every subscriber of its tenant without waiting."""
        for subscription in list(self._subscribers.get(tenant_id, ())):
            subscription.offer(payload)

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        for subscriptions in self._subscribers.values():
            for subscription in list(subscriptions):
                subscription.overflowed = True
                if subscription.queue.empty():
                    subscription.queue.put_nowait(None)
        self._subscribers.clear()
