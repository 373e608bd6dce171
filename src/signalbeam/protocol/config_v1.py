"""Config layers as they travel in a desired-state document, and how a device merges them.

A device's config is the merge of up to three kinds of **layer**: the tenant default, each
group the device is in (lowest `priority` first, then by name), and the device's own. A later
layer's top-level key replaces an earlier one's; documents are not merged deeply, so the
value a unit sees is always one layer's value, and "where did this come from" has one answer.

Each layer version is signed on its own (`layer_payload`), by the server key or, in
operator-keys-only mode, by an operator key, so the server never signs a per-device merge the
operator did not write. Secret values are not in the signed payload: it carries their
sha256, and the document carries the values beside it, for this device only. The agent
checks every signature and every secret's hash before it renders anything.

The desired-state document of kind `bundle` gains an optional key:

    "config": {
      "layers": [ {"scope": "tenant", "name": "", "version": 3, "priority": 0,
                   "values": {...}, "secret_hashes": {"DB_PASSWORD": "<sha256 hex>"},
                   "signatures": [{"key_id": ..., "signature": ...}]}, ... ],
      "secrets": {"DB_PASSWORD": "the value"},
      "digest": "sha256:<hex>"
    }

`digest` is `config_digest(merge(...))`: the name of what the device should apply, which it
reports back in `ReportedState.config` so the server can tell `pending` from `applied`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from signalbeam.protocol.canonical import canonical_json

LAYER_TYPE = "signalbeam.config-layer.v1"
Scope = Literal["tenant", "group", "device"]
SCOPES: tuple[Scope, ...] = ("tenant", "group", "device")
# A key is a name people type: letters, digits, `_`, `.`, `-`; where a unit uses it as an
# environment variable the variable's own name is checked against ENV_NAME_PATTERN instead.
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
MAX_DOCUMENT_BYTES = 64 * 1024  # one layer's canonical JSON, secrets included
MAX_KEYS = 512

_SCOPE_ORDER = {scope: index for index, scope in enumerate(SCOPES)}


@dataclass(frozen=True)
class Layer:
    """One version of one layer: what an operator wrote for the tenant, a group or a device."""

    scope: Scope
    name: str  # "" for the tenant, the group's name, or the device id
    version: int
    values: Mapping[str, Any]
    secret_hashes: Mapping[str, str]
    priority: int = 0  # only groups have one; higher wins over lower

    def payload(self) -> bytes:
        """The bytes a layer signature covers."""
        return layer_payload(self)

    def to_wire(self, signatures: Iterable[Mapping[str, str]]) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "name": self.name,
            "version": self.version,
            "priority": self.priority,
            "values": dict(self.values),
            "secret_hashes": dict(self.secret_hashes),
            "signatures": [dict(s) for s in signatures],
        }


@dataclass(frozen=True)
class Source:
    """Where a merged key's value came from: `device pi-07, version 4`."""

    scope: Scope
    name: str
    version: int

    def __str__(self) -> str:
        if self.scope == "tenant":
            return f"tenant, version {self.version}"
        return f"{self.scope} {self.name}, version {self.version}"


@dataclass(frozen=True)
class Merged:
    """The effective config: each key's value (None for a secret) and where it came from."""

    values: Mapping[str, Any]
    secrets: frozenset[str]  # keys whose effective value is a secret
    sources: Mapping[str, Source]

    def digest(self, secret_hashes: Mapping[str, str]) -> str:
        return config_digest(self.values, {k: secret_hashes[k] for k in self.secrets})


def layer_payload(layer: Layer) -> bytes:
    """Type-tagged canonical JSON of everything a layer says, secrets by hash only."""
    return canonical_json(
        {
            "type": LAYER_TYPE,
            "scope": layer.scope,
            "name": layer.name,
            "version": layer.version,
            "priority": layer.priority,
            "values": dict(layer.values),
            "secret_hashes": dict(layer.secret_hashes),
        }
    )


def secret_hash(value: str) -> str:
    """sha256 hex of a secret's UTF-8 bytes: what signatures and digests cover instead."""
    return hashlib.sha256(value.encode()).hexdigest()


def ordered(layers: Iterable[Layer]) -> list[Layer]:
    """Layers in merge order: tenant, groups (priority, then name), device."""
    return sorted(layers, key=lambda layer: (_SCOPE_ORDER[layer.scope], layer.priority, layer.name))


def merge(layers: Iterable[Layer]) -> tuple[Merged, dict[str, str]]:
    """The effective config of `layers`, and the secret hashes the merged secrets carry."""
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    sources: dict[str, Source] = {}
    hashes: dict[str, str] = {}
    for layer in ordered(layers):
        source = Source(layer.scope, layer.name, layer.version)
        for key, value in layer.values.items():
            values[key], sources[key] = value, source
            secrets.discard(key)
            hashes.pop(key, None)
        for key, digest in layer.secret_hashes.items():
            values.pop(key, None)
            secrets.add(key)
            sources[key], hashes[key] = source, digest
    return Merged(values, frozenset(secrets), sources), hashes


def config_digest(values: Mapping[str, Any], secret_hashes: Mapping[str, str]) -> str:
    """`sha256:<hex>` naming an effective config: its values and its secrets' hashes."""
    body = canonical_json({"values": dict(values), "secret_hashes": dict(secret_hashes)})
    return "sha256:" + hashlib.sha256(body).hexdigest()


def key_problem(key: object) -> str | None:
    """Why `key` cannot name a config key, or None."""
    if not isinstance(key, str) or not re.fullmatch(KEY_PATTERN, key):
        return (
            f"{key!r} is not a valid config key (start with a letter or _, then letters, "
            "digits, _ . -; at most 128)"
        )
    return None


ConfigStatus = Literal["pending", "applied", "failed"]


# A file template's only syntax: `{{ KEY }}` (spaces optional) is replaced by KEY's value.
TEMPLATE_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]{0,127})\s*\}\}")


def template_keys(template: str) -> list[str]:
    """The config keys a file template uses, in order of first use."""
    return list(dict.fromkeys(TEMPLATE_FIELD.findall(template)))


def value_text(value: Any) -> str:
    """A config value as a unit sees it: a string as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
