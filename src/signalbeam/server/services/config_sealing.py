"""The config section of a stored desired-state document keeps its secrets sealed.

Devices need clear secret values in their desired state, but the document is stored in the
devices table, shown by `devices show` and copied into backups. So what is stored carries
`sealed_secrets` (one AES-GCM box, secrets_box.py) instead of `secrets`, and the document
is opened only on its way to the device (the credential look-up that caches it, and the
watch wake-up, which hands over the clear copy the writer still holds in memory).
"""

from __future__ import annotations

import json
from typing import Any

from signalbeam.protocol.config_v1 import Layer, merge
from signalbeam.server.secrets_box import SecretsBox

SEALED_KEY = "sealed_secrets"


def _context(tenant_id: int) -> str:
    return f"tenant {tenant_id}: desired config secrets"


def seal_document(box: SecretsBox, tenant_id: int, spec: dict[str, Any]) -> dict[str, Any]:
    """The form of `spec` to store: its config secrets sealed (the same dict without any)."""
    section = spec.get("config")
    if not isinstance(section, dict) or not section.get("secrets"):
        return spec
    clear = json.dumps(section["secrets"], sort_keys=True)
    stored = {k: v for k, v in section.items() if k != "secrets"}
    stored[SEALED_KEY] = box.seal(clear, _context(tenant_id))
    return {**spec, "config": stored}


def open_document(box: SecretsBox, tenant_id: int, spec: dict[str, Any]) -> dict[str, Any]:
    """The form of a stored `spec` a device gets: its config secrets in clear."""
    section = spec.get("config")
    if not isinstance(section, dict) or SEALED_KEY not in section:
        return spec
    secrets = json.loads(box.open(str(section[SEALED_KEY]), _context(tenant_id)))
    opened = {k: v for k, v in section.items() if k != SEALED_KEY}
    opened["secrets"] = secrets
    return {**spec, "config": opened}


def redacted_document(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored `spec` as people see it: secret names only (`"DB_PASSWORD": "(secret)"`)."""
    section = spec.get("config")
    if not isinstance(section, dict) or SEALED_KEY not in section:
        return spec
    shown = {k: v for k, v in section.items() if k != SEALED_KEY}
    layers = [
        Layer(x["scope"], x["name"], x["version"], x["values"], x["secret_hashes"], x["priority"])
        for x in section.get("layers") or []
    ]
    merged, _ = merge(layers)
    shown["secrets"] = dict.fromkeys(sorted(merged.secrets), "(secret)")
    return {**spec, "config": shown}
