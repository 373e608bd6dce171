"""Request and response bodies of webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from signalbeam.domain.notifications import NOTIFIER_NAME_PATTERN
from signalbeam.domain.webhooks import EVENT_PATTERN, MAX_EVENT_TYPES, URL_PATTERN
from signalbeam.server.api.management.v1.field_rules import SelectorOrBlank
from signalbeam.server.api.management.v1.notifier_schemas import AttemptPublic
from signalbeam.server.api.management.v1.schemas import Body

WebhookName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=NOTIFIER_NAME_PATTERN)
]
# Checked by `check_webhook_url` and `check_event_types`, whose messages say what to write
# (the event one lists the known types); the schema states the same rules.
WebhookUrl = Annotated[
    str, Field(min_length=8, max_length=2000, json_schema_extra={"pattern": URL_PATTERN})
]
EventPattern = Annotated[
    str, Field(min_length=1, max_length=64, json_schema_extra={"pattern": EVENT_PATTERN})
]
EVENTS = 'exact event types, families such as "device.*", or "*" for every event'
Events = Annotated[
    list[EventPattern], Field(min_length=1, max_length=MAX_EVENT_TYPES, description=EVENTS)
]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=500)]
SELECTOR = "only events about devices it matches (events about no device are then not sent)"
KEY_HELP = "the HMAC-SHA256 signing key (write-only; made and shown once when left out)"


class WebhookCreate(Body):
    name: WebhookName
    url: WebhookUrl = Field(description="where events are POSTed")
    events: Events
    selector: SelectorOrBlank | None = Field(default=None, description=SELECTOR)
    enabled: StrictBool = True
    secret: Secret | None = Field(default=None, description=KEY_HELP)


class WebhookUpdate(Body):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    # Left out, these keep their value; null would mean nothing, so it is neither in the schema
    # nor accepted (a null or blank selector clears it: every device).
    url: WebhookUrl | SkipJsonSchema[None] = None
    events: Events | SkipJsonSchema[None] = None
    selector: SelectorOrBlank | None = Field(default=None, description=SELECTOR)
    enabled: StrictBool | SkipJsonSchema[None] = None
    secret: Secret | SkipJsonSchema[None] = Field(default=None, description=KEY_HELP)

    @field_validator("url", "events", "enabled", "secret", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("null neither keeps nor clears this; leave the field out to keep it")
        return value


class WebhookPublic(BaseModel):
    name: str
    url: str
    events: list[str]
    selector: str | None
    enabled: bool
    has_secret: bool
    created_at: datetime
    created_by: str


class WebhookCreated(WebhookPublic):
    secret: str | None = Field(
        description="the signing key the server made, shown this once; null when you gave one"
    )


class WebhookDeliveryPublic(BaseModel):
    id: int
    event_id: int | None = Field(description="the event it carries; null for a test")
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_result: str | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[AttemptPublic]
