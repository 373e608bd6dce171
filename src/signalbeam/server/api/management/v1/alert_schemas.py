"""Request and response bodies of alert rules and incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from signalbeam.domain.alerts import RULE_NAME_PATTERN, IncidentState, RuleKind, Severity
from signalbeam.server.api.management.v1.field_rules import SelectorOrBlank
from signalbeam.server.api.management.v1.schemas import Body

RuleName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=RULE_NAME_PATTERN)]
SCOPE = "devices it covers; leave out selector and group for every device"
# The rule checks refuse a selector and a group together; the schema says so too.
ONE_SCOPE: dict[str, Any] = {
    "not": {
        "required": ["selector", "group"],
        "properties": {"selector": {"type": "string"}, "group": {"type": "string"}},
    }
}
DURATION = "a duration such as 90s, 15m, 24h, 7d or 1h30m"
# The durations domain/durations.py parses: bare seconds, or up to four number-unit parts.
Duration = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=32,
        pattern=r"^(\d{1,9}(\.\d{1,6})?|(\d{1,4}(\.\d{1,6})?(ms|s|m|h|d|w)){1,4})$",
    ),
]
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Metric = Literal["cpu", "memory", "disk", "load", "temperature"]
Mount = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^/")]


class AlertRuleCreate(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_SCOPE)
    name: RuleName
    kind: RuleKind
    severity: Severity = Severity.WARNING
    for_: Duration | None = Field(
        default=None, alias="for", description=f"how long the condition must last: {DURATION}"
    )
    selector: SelectorOrBlank | None = Field(default=None, description=SCOPE)
    group: GroupName | None = Field(default=None, description=SCOPE)
    enabled: bool = True
    metric: Metric | None = Field(default=None, description="metric_above: what to watch")
    threshold: float | None = Field(
        default=None, ge=-50, le=1000, description="metric_above: fires above this"
    )
    mount: Mount | None = Field(default=None, description="metric_above on disk: one mount")


class AlertRuleEdit(Body):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_SCOPE)

    # Left out, these keep their value; null would mean nothing, so it is neither in the schema
    # nor accepted (selector, group, threshold and mount take null: it clears them).
    severity: Severity | SkipJsonSchema[None] = None
    for_: Duration | SkipJsonSchema[None] = Field(default=None, alias="for", description=DURATION)
    selector: SelectorOrBlank | None = None
    group: GroupName | None = None
    enabled: StrictBool | SkipJsonSchema[None] = None
    threshold: float | None = Field(default=None, ge=-50, le=1000)
    mount: Mount | None = None

    @field_validator("severity", "for_", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("null neither keeps nor clears this; leave the field out to keep it")
        return value


class AlertRulePublic(BaseModel):
    name: str
    kind: str
    severity: str
    for_seconds: int
    selector: str | None
    group: str | None
    enabled: bool
    metric: str | None = None
    threshold: float | None = None
    mount: str | None = None
    description: str = Field(description="what it fires on, in words")
    created_at: datetime
    created_by: str
    updated_at: datetime


class AlertPreview(BaseModel):
    would_fire: list[str] = Field(description="devices (or rollout/<id>) it would fire on now")
    total: int
    note: str


class IncidentEntryPublic(BaseModel):
    at: datetime
    kind: str
    actor: str
    message: str


class IncidentPublic(BaseModel):
    id: int
    rule: str
    subject: str = Field(description="the device id, or rollout/<id>")
    device_id: str | None
    state: IncidentState
    severity: str
    title: str
    opened_at: datetime
    last_fired_at: datetime
    fired_count: int = Field(description="how often it fired (it reopens when it flaps)")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    cause: dict[str, Any] | None = Field(
        description="the change that preceded it on its device or rollout (event id, type, "
        "message, actor, at)"
    )


class IncidentDetail(IncidentPublic):
    timeline: list[IncidentEntryPublic]


class IncidentList(BaseModel):
    items: list[IncidentPublic]
    total: int
    limit: int
    offset: int


class SilenceCreate(Body):
    for_: Duration | None = Field(default=None, alias="for", description=f"from now: {DURATION}")
    until: AwareDatetime | None = Field(default=None, description="or: until then")
    window: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="a recurring maintenance window, such as Sat,Sun 00:00-24:00 or "
        "Mon-Fri 01:00-05:00 UTC (the device's local time unless UTC); `;` between several",
    )
    selector: str | None = Field(default=None, max_length=2000, description="devices it mutes")
    rule: RuleName | None = Field(default=None, description="only this rule's notices")
    comment: str = Field(default="", max_length=500)


class SilencePublic(BaseModel):
    id: int
    selector: str | None
    rule: str | None
    window: str | None
    starts_at: datetime
    ends_at: datetime | None
    comment: str
    created_at: datetime
    created_by: str
