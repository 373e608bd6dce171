"""Request and response bodies of notifiers and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from signalbeam.domain.alerts import Severity
from signalbeam.domain.notifications import NOTIFIER_NAME_PATTERN, NotifierKind
from signalbeam.server.api.management.v1.schemas import Body

NotifierName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=NOTIFIER_NAME_PATTERN)
]
HttpUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://.+")]
Address = Annotated[
    str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
]


class NotifierCreate(Body):
    name: NotifierName
    kind: NotifierKind
    url: HttpUrl | None = Field(default=None, description="webhook, slack and teams: where to POST")
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="webhook: the HMAC signing key (made and shown once when left out); "
        "email: the SMTP password. Never shown again.",
    )
    min_severity: Severity = Field(default=Severity.WARNING, description="this severity and up")
    selector: str | None = Field(
        default=None, max_length=2000, description="only incidents on devices it matches"
    )
    smtp_host: str | None = Field(default=None, min_length=1, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = Field(default=None, min_length=1, max_length=255)
    sender: Address | None = None
    to: list[Address] = Field(default_factory=list, max_length=50)


class NotifierPublic(BaseModel):
    name: str
    kind: str
    min_severity: str
    selector: str | None
    config: dict[str, Any] = Field(description="url, or the SMTP settings (no password)")
    has_secret: bool
    enabled: bool
    created_at: datetime
    created_by: str


class NotifierCreated(NotifierPublic):
    signing_key: str | None = Field(
        description="the webhook signing key the server made; shown this once"
    )


class TestResult(BaseModel):
    delivered: bool
    status_code: int | None
    detail: str


class AttemptPublic(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    grouped: int = Field(description="notices the message carried")


class DeliveryPublic(BaseModel):
    id: int
    incident_id: int | None
    transition: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_result: str | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[AttemptPublic]
