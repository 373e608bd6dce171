"""Config layers as operators edit them: validation, patches, diffs and the effective view.

The wire format and the merge rule live in protocol/config_v1.py; this module is what the
server decides before anything is stored: whether a layer document is acceptable (each
refusal names the field, e.g. `set.LOG_LEVEL`), what a PATCH makes of the current version,
what changed between two versions (secrets by hash only, never by value), and each effective
key with the words that say where it came from. Nothing here touches a database or a key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import SchemaError, UnknownType
from referencing.exceptions import Unresolvable

from signalbeam.domain.errors import InvalidInput
from signalbeam.protocol.canonical import canonical_json
from signalbeam.protocol.config_v1 import (
    MAX_DOCUMENT_BYTES,
    MAX_KEYS,
    Layer,
    Scope,
    Source,
    key_problem,
    merge,
    secret_hash,
)

MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
MAX_MESSAGE = 2000
# What a schema sees in place of a secret: a present string, whose value the server does
# not put beside the document it checks.
SECRET_PLACEHOLDER = "********"  # noqa: S105 - a placeholder, not a secret
ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class LayerContent:
    """What one layer version says: plain values, secrets by hash, and its priority."""

    values: Mapping[str, Any] = field(default_factory=dict)
    secret_hashes: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0

    def all_keys(self) -> set[str]:
        return set(self.values) | set(self.secret_hashes)


@dataclass(frozen=True)
class Patch:
    """A PATCH: keys to set, to remove, secrets to set (clear values), a new priority."""

    set: Mapping[str, Any] = field(default_factory=dict)
    unset: Sequence[str] = ()
    secrets: Mapping[str, Any] = field(default_factory=dict)
    priority: int | None = None


@dataclass(frozen=True)
class Change:
    """One key's change between two versions; a secret's old and new values are never shown."""

    key: str
    change: ChangeKind
    old: Any
    new: Any
    secret: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "change": self.change,
            "old": self.old,
            "new": self.new,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class EffectiveItem:
    """One key of a device's effective config and where its value came from."""

    key: str
    value: Any  # None for a secret
    secret: bool
    source: Source

    @property
    def origin(self) -> str:
        return str(self.source)


def check_priority(priority: int | None, scope: Scope) -> None:
    """Refuse a priority outside the allowed range, or one on a layer that is not a group's."""
    if priority is None:
        return
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidInput(
            f"priority {priority} is outside {MIN_PRIORITY}..{MAX_PRIORITY}", field="priority"
        )
    if priority != 0 and scope != "group":
        raise InvalidInput(
            "only group layers have a priority (it orders groups); leave it out here",
            field="priority",
        )


def check_values(values: object, where: str) -> dict[str, Any]:
    """The values as a dict, or a 422 naming `where` (or `where.KEY`) and what is wrong."""
    if not isinstance(values, dict):
        raise InvalidInput(f"{where} must be an object of keys and values", field=where)
    for key in values:
        problem = key_problem(key)
        if problem is not None:
            raise InvalidInput(f"{where}.{key}: {problem}", field=f"{where}.{key}")
    return values


def check_secrets(secrets: object) -> dict[str, str]:
    """Secret values as a dict of strings, or a 422 naming the secret that is not one."""
    checked = check_values(secrets, "secrets")
    for key, value in checked.items():
        if not isinstance(value, str):
            raise InvalidInput(
                f"secrets.{key}: a secret's value must be a string (got {type(value).__name__})",
                field=f"secrets.{key}",
            )
    return checked


def check_size(content: LayerContent, secrets: Mapping[str, str], where: str) -> None:
    """Refuse a layer with too many keys or over MAX_DOCUMENT_BYTES (secrets included)."""
    keys = content.all_keys()
    if len(keys) > MAX_KEYS:
        raise InvalidInput(
            f"a layer holds at most {MAX_KEYS} keys; this one would hold {len(keys)}", field=where
        )
    try:
        size = len(canonical_json({"values": dict(content.values), "secrets": dict(secrets)}))
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"{where}: values must be JSON ({err})", field=where) from err
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"a layer is at most {MAX_DOCUMENT_BYTES // 1024} KiB of JSON; this one would be "
            f"{size} bytes",
            field=where,
        )


def apply_patch(current: LayerContent, patch: Patch) -> LayerContent:
    """The layer after a PATCH; the patch's secrets must already be checked strings."""
    values = check_values(dict(patch.set), "set")
    secrets = check_secrets(dict(patch.secrets))
    for key in patch.unset:
        problem = key_problem(key)
        if problem is not None:
            raise InvalidInput(f"unset.{key}: {problem}", field=f"unset.{key}")
        if key in values or key in secrets:
            field_name = "set" if key in values else "secrets"
            raise InvalidInput(
                f"unset: {key} is also in {field_name}; set it or unset it, not both",
                field=f"unset.{key}",
            )
    both = sorted(set(values) & set(secrets))
    if both:
        raise InvalidInput(
            f"set.{both[0]}: a key is a value or a secret, not both", field=f"set.{both[0]}"
        )
    new_values = {k: v for k, v in current.values.items() if k not in patch.unset}
    new_hashes = {k: h for k, h in current.secret_hashes.items() if k not in patch.unset}
    for key, value in values.items():
        new_values[key] = value
        new_hashes.pop(key, None)
    for key, secret in secrets.items():
        new_hashes[key] = secret_hash(secret)
        new_values.pop(key, None)
    priority = current.priority if patch.priority is None else patch.priority
    return LayerContent(new_values, new_hashes, priority)


def replace_values(current: LayerContent, values: object, priority: int | None) -> LayerContent:
    """The layer after a PUT: these non-secret values; secrets not named by them are kept."""
    checked = check_values(values, "values")
    hashes = {k: h for k, h in current.secret_hashes.items() if k not in checked}
    return LayerContent(dict(checked), hashes, current.priority if priority is None else priority)


def diff(old: LayerContent, new: LayerContent) -> list[Change]:
    """What changed from `old` to `new`, by key; secrets say only that they changed."""
    changes = []
    for key in sorted(old.all_keys() | new.all_keys()):
        change = _key_change(key, old, new)
        if change is not None:
            changes.append(change)
    return changes


def _key_change(key: str, old: LayerContent, new: LayerContent) -> Change | None:
    was_secret, is_secret = key in old.secret_hashes, key in new.secret_hashes
    had, has = key in old.all_keys(), key in new.all_keys()
    secret = was_secret or is_secret
    before = None if was_secret else old.values.get(key)
    after = None if is_secret else new.values.get(key)
    if not had:
        return Change(key, "added", None, after, secret)
    if not has:
        return Change(key, "removed", before, None, secret)
    if was_secret and is_secret:
        same = old.secret_hashes[key] == new.secret_hashes[key]
    else:
        same = was_secret == is_secret and _same(old.values.get(key), new.values.get(key))
    return None if same else Change(key, "changed", before, after, secret)


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and 1.0 and True differ in a document even where Python calls them equal.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def effective(layers: Iterable[Layer]) -> tuple[list[EffectiveItem], str | None]:
    """Each effective key (sorted) with its source, and the digest; None when no key is set."""
    merged, hashes = merge(layers)
    keys = sorted(set(merged.values) | merged.secrets)
    items = [
        EffectiveItem(key, merged.values.get(key), key in merged.secrets, merged.sources[key])
        for key in keys
    ]
    return items, (merged.digest(hashes) if keys else None)


def schema_view(layers: Iterable[Layer]) -> dict[str, Any]:
    """The effective config as a bundle's config schema checks it (secrets as placeholders)."""
    merged, _ = merge(layers)
    return {**merged.values, **dict.fromkeys(merged.secrets, SECRET_PLACEHOLDER)}


@dataclass(frozen=True)
class SchemaProblem:
    """Where a config breaks a schema: a JSON path like `$.ports[0]`, and why."""

    path: str
    reason: str
    key: str | None  # the top-level config key the path starts at


def schema_problem(schema: object, config: Mapping[str, Any]) -> SchemaProblem | None:
    """The first way `config` breaks `schema` (by path), or None when it satisfies it."""
    if not isinstance(schema, dict):
        return None
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.path)))
    except SchemaError as err:
        return SchemaProblem("$", f"the bundle's config_schema is not valid: {err.message}", None)
    except (UnknownType, Unresolvable) as err:
        # A reference to another document: nothing is fetched, so it cannot be checked.
        return SchemaProblem("$", f"the bundle's config_schema cannot be used: {err}", None)
    if not errors:
        return None
    first = errors[0]
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.path)
    key = str(first.path[0]) if first.path else None
    return SchemaProblem(path, first.message, key)


ConfigState = Literal["none", "pending", "applied", "failed"]


@dataclass(frozen=True)
class DeviceConfigStatus:
    """Whether a device has applied the config it should have."""

    state: ConfigState
    reason: str | None = None
    applied_digest: str | None = None


def config_status(
    desired: Mapping[str, Any], reported: Mapping[str, Any] | None
) -> DeviceConfigStatus:
    """`none` (no config to apply), `pending`, `applied` or `failed`, from the desired-state
    document's config digest and what the device reported (`reported.config`)."""
    section = desired.get("config")
    wanted = section.get("digest") if isinstance(section, dict) else None
    return config_report_status(wanted, (reported or {}).get("config"))


def config_report_status(wanted: object, report: object) -> DeviceConfigStatus:
    """`config_status` from the two parts it reads: the digest the device should apply and
    its `reported.config` (each as found, possibly missing or malformed)."""
    report = report if isinstance(report, dict) else {}
    status, digest = report.get("status"), report.get("digest")
    applied = digest if status == "applied" and isinstance(digest, str) else None
    if not isinstance(wanted, str):
        return DeviceConfigStatus("none", None, applied)
    if digest == wanted and status == "failed":
        reason = report.get("reason")
        return DeviceConfigStatus("failed", reason if isinstance(reason, str) else None, applied)
    if applied == wanted:
        return DeviceConfigStatus("applied", None, applied)
    return DeviceConfigStatus("pending", None, applied)
