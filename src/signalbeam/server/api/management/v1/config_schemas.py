"""Request and response bodies of config layers, their history, and devices' effective config."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, WithJsonSchema

from signalbeam.domain.config import MAX_MESSAGE, MAX_PRIORITY, MIN_PRIORITY, Change
from signalbeam.protocol.config_v1 import KEY_PATTERN, MAX_DOCUMENT_BYTES, MAX_KEYS
from signalbeam.server.api.management.v1.field_rules import MAX_ID
from signalbeam.server.api.management.v1.schemas import Body

_KEY_RULE = {"minLength": 1, "maxLength": 128, "pattern": KEY_PATTERN}
_LIMITS = (
    f"at most {MAX_KEYS} keys in the layer, and {MAX_DOCUMENT_BYTES // 1024} KiB of JSON "
    "with its secrets"
)
# Keys are checked by `key_problem` (domain/config.py), whose 422 names `set.KEY`; the schema
# states the same rule (pydantic would write key patterns as patternProperties, which leave
# other keys unconstrained, so it is written out).
ConfigKey = Annotated[str, Field(max_length=1000, json_schema_extra=_KEY_RULE)]
Values = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_KEYS,
            "propertyNames": _KEY_RULE,
            "description": "top-level keys and any JSON values; " + _LIMITS,
        }
    ),
]
Secrets = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_KEYS,
            "propertyNames": _KEY_RULE,
            "additionalProperties": {"type": "string"},
            "description": "secret keys and their values (write-only: never shown back)",
        }
    ),
]
Message = Annotated[str, Field(max_length=MAX_MESSAGE)]
PRIORITY_HELP = "orders groups: a higher priority's keys win over a lower one's (null: keep)"
EXPECTED_HELP = "refuse (409) unless the layer is still at this version (0: never written)"
# Nullable rather than a union with a hidden null, so a refusal names the field itself.
Priority = Annotated[
    int | None,
    Field(default=None, strict=True, ge=MIN_PRIORITY, le=MAX_PRIORITY, description=PRIORITY_HELP),
]
ExpectedVersion = Annotated[
    int | None, Field(default=None, strict=True, ge=0, le=MAX_ID, description=EXPECTED_HELP)
]


class ConfigPatch(Body):
    """Only the keys named change."""

    set: Values = Field(default_factory=dict, description="keys to set")
    unset: list[ConfigKey] = Field(
        default_factory=list, max_length=MAX_KEYS, description="keys to remove (values or secrets)"
    )
    secrets: Secrets = Field(default_factory=dict)
    message: Message = ""
    expected_version: ExpectedVersion = None


class GroupConfigPatch(ConfigPatch):
    priority: Priority = None


class ConfigPut(Body):
    """The layer's non-secret values become exactly these; its secrets are kept."""

    values: Values
    message: Message = ""
    expected_version: ExpectedVersion = None


class GroupConfigPut(ConfigPut):
    priority: Priority = None


class ConfigRollback(Body):
    to: Annotated[StrictInt, Field(ge=1, le=MAX_ID, description="the version to bring back")]
    message: Message = ""
    expected_version: ExpectedVersion = None


class ConfigLayerPublic(BaseModel):
    scope: Literal["tenant", "group", "device"]
    name: str = Field(description='"" for the tenant, else the group name or device id')
    version: int = Field(description="0 when the layer was never written")
    priority: int
    values: dict[str, Any]
    secrets: list[str] = Field(description="names of the layer's secrets (values never shown)")
    author: str | None
    message: str | None
    created_at: datetime | None


class ConfigChangeItem(BaseModel):
    key: str
    change: Literal["added", "removed", "changed"]
    old: Any = Field(description="null for secrets")
    new: Any = Field(description="null for secrets")
    secret: bool

    @classmethod
    def of(cls, change: Change) -> ConfigChangeItem:
        return cls(**change.to_dict())


class ConfigChangePublic(BaseModel):
    layer: ConfigLayerPublic
    changes: list[ConfigChangeItem]
    affected_devices: int = Field(
        description="devices that get the new config: those the layer reaches that run a "
        "bundle (config travels with it); 0 when unchanged"
    )
    unchanged: bool = Field(
        False, description="nothing differed from the current version, so no version was made"
    )


class ConfigHistoryItem(BaseModel):
    version: int
    author: str
    message: str
    created_at: datetime
    changes: list[ConfigChangeItem] = Field(description="what it changed from the version before")


class ConfigHistoryPage(BaseModel):
    items: list[ConfigHistoryItem]
    total: int


class ConfigDiffPublic(BaseModel):
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    changes: list[ConfigChangeItem]


class ConfigSourcePublic(BaseModel):
    scope: Literal["tenant", "group", "device"]
    name: str
    version: int


class ConfigItemPublic(BaseModel):
    key: str
    value: Any = Field(description="null for secrets")
    secret: bool
    source: ConfigSourcePublic
    origin: str = Field(description='where the value came from, e.g. "device pi-07, version 4"')


class ConfigStatusPublic(BaseModel):
    state: Literal["none", "pending", "applied", "failed"]
    reason: str | None
    applied_digest: str | None


class DeviceConfigPublic(BaseModel):
    device_id: str
    digest: str | None = Field(description="names the effective config; null when it is empty")
    items: list[ConfigItemPublic]
    status: ConfigStatusPublic


class GroupConfigStatusPublic(BaseModel):
    applied: int
    pending: int
    failed: int
    none: int
