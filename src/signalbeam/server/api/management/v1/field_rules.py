"""Field types that carry their validation rules, so the OpenAPI document states them.

Each rule here is one the server checks, written from the same constants, so a generated
client that obeys the document is refused only for the state of the tenant, never for the
shape of a value. Where the domain has its own check, whose message says exactly what is
wrong ("write it like 24h", "a label key must start with..."), the rule is stated for the
schema and the domain enforces it; elsewhere pydantic enforces the declaration itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

from signalbeam.domain.model import EventType
from signalbeam.domain.selectors import (
    BLANK_OR_SELECTOR_PATTERN,
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    MAX_LABEL_LENGTH,
    SELECTOR_PATTERN,
)
from signalbeam.server.repositories.devices import SORT_COLUMNS
from signalbeam.server.services.groups import GROUP_NAME_PATTERN
from signalbeam.server.services.users import MIN_PASSWORD

# `90s`, `15m`, `1h30m`, `7d` or bare seconds, each part at least one unit (a token or session
# that ends before it starts is refused); at most four parts of three digits, inside the
# century `parse_duration` allows. It also reads `1.5h`; the pattern states the plain form.
_PART = r"[1-9]\d{0,2}(ms|s|m|h|d|w)"
DURATION_PATTERN = rf"^([1-9]\d{{0,8}}|({_PART}){{1,4}})$"
# The same, or zero (`0`, `0s`): a soak or a backoff may be none at all.
DURATION_OR_ZERO_PATTERN = rf"^(0+(ms|s|m|h|d|w)?|[1-9]\d{{0,8}}|({_PART}){{1,4}})$"
DURATION = "a duration such as 90s, 15m, 24h, 7d or 1h30m"

_KEY_RULE = {"minLength": 1, "maxLength": MAX_LABEL_LENGTH, "pattern": LABEL_KEY_PATTERN}
_VALUE_RULE = {"minLength": 1, "maxLength": MAX_LABEL_LENGTH, "pattern": LABEL_VALUE_PATTERN}
# Checked by the label rules in `domain.selectors` (pydantic would state key patterns as
# patternProperties, which leave other keys unconstrained, so the schema is written out).
LabelKey = Annotated[str, Field(max_length=1000, json_schema_extra=_KEY_RULE)]
Labels = Annotated[
    dict[str, str],
    Field(max_length=64),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 64,
            "propertyNames": _KEY_RULE,
            "additionalProperties": {"type": "string", **_VALUE_RULE},
        }
    ),
]
# A group's name is checked by `groups.create`; one that names a group must have its shape.
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=GROUP_NAME_PATTERN)
]
NewGroupName = Annotated[
    str, Field(max_length=200, json_schema_extra={"pattern": GROUP_NAME_PATTERN})
]
# Checked by `parse_duration`, which says how to write one.
Duration = Annotated[str, Field(max_length=32, json_schema_extra={"pattern": DURATION_PATTERN})]
# Checked by the users service, which says how long.
Password = Annotated[str, Field(max_length=1024, json_schema_extra={"minLength": MIN_PASSWORD})]


def _iso_only(value: object) -> object:
    # Pydantic also reads a bare number as a Unix time; the document says ISO 8601, so does this.
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(f"{value!r} is not a time; write it like 2026-01-31T12:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_only)]
# Selectors are checked by `parse_selector`, whose messages point at the position; the schema
# states the same grammar. Actions, assignments and rollouts refuse a blank one.
Selector = Annotated[str, Field(max_length=2000, json_schema_extra={"pattern": SELECTOR_PATTERN})]
SelectorOrBlank = Annotated[
    str, Field(max_length=2000, json_schema_extra={"pattern": BLANK_OR_SELECTOR_PATTERN})
]

# The databases store ids and offsets as signed 64-bit integers: a larger one names nothing.
MAX_ID = 2**63 - 1
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="the token's id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]

# Agents report their own event types, always under "agent.".
EVENT_TYPE_PATTERN = (
    "^(agent\\..*|" + "|".join(re.escape(t.value) for t in sorted(EventType)) + ")$"
)
DEVICE_SORT_PATTERN = "^-?(" + "|".join(SORT_COLUMNS) + ")$"


def exactly_one_of(*names: str) -> dict[str, Any]:
    """JSON Schema for "exactly one of these properties is given (not null)".

    The service checks the same rule (`Target.kind`) with a message naming what was given.
    """
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


TARGET_RULE = exactly_one_of("devices", "group", "selector")
