"""The config section of a desired-state document, read and verified before anything renders.

Each layer must carry a signature by a key this device trusts (the same trust store and
signature format as bundles), each secret value must hash to what its signed layer says,
and the digest must be the one the merge of the layers gives. Anything else refuses the
whole desired document, as a tampered bundle is refused: nothing changes on the device.
Secret values are never logged or put into a reason; only their names are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from signalbeam.agent.units import UnitError
from signalbeam.protocol.config_v1 import (
    SCOPES,
    Layer,
    Scope,
    Source,
    key_problem,
    merge,
    secret_hash,
)

if TYPE_CHECKING:
    from signalbeam.protocol.signing import Trust


class ConfigRefused(UnitError):
    """The desired config does not verify; the reason names the layer or key, never a value."""

    def __init__(self, reason: str, digest: str | None) -> None:
        super().__init__(reason)
        self.digest = digest


@dataclass(frozen=True)
class Config:
    """A verified effective config: every key's value (secrets in clear), and its digest."""

    digest: str
    values: Mapping[str, Any]
    secrets: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        """What the state dir keeps (owner-only), so a restart can roll back without re-verifying."""
        return {"digest": self.digest, "values": dict(self.values), "secrets": sorted(self.secrets)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Config:
        """Read `to_json` output; raises KeyError or TypeError when damaged."""
        values = data["values"]
        if not isinstance(values, dict):
            raise TypeError("config values are not an object")
        return cls(str(data["digest"]), values, frozenset(str(k) for k in data["secrets"]))


def section_digest(section: Any) -> str | None:
    """The digest a config section claims, for a report about a section that was refused."""
    digest = section.get("digest") if isinstance(section, Mapping) else None
    return digest if isinstance(digest, str) else None


def read_config(section: Any, trust: Trust | None) -> Config | None:
    """Verify a desired document's `config` section; None when it carries no layers."""
    if section is None:
        return None
    claimed = section_digest(section)
    if not isinstance(section, Mapping) or not isinstance(section.get("layers", []), list):
        raise ConfigRefused("the desired config is not a config section; update the agent", None)
    if not section.get("layers"):
        return None
    if trust is None:
        raise ConfigRefused(
            "config signature verification failed (no trusted keys pinned; register the agent "
            "again to pin the server's keys)",
            claimed,
        )
    layers = [
        _verified(entry, index, trust, claimed) for index, entry in enumerate(section["layers"])
    ]
    merged, hashes = merge(layers)
    secrets = _secrets(section.get("secrets"), hashes, merged.sources, claimed)
    digest = merged.digest(hashes)
    if claimed != digest:
        raise ConfigRefused(
            f"desired config digest mismatch: the server said {claimed}, the layers merge to "
            f"{digest}; refusing it",
            claimed,
        )
    return Config(digest, {**merged.values, **secrets}, merged.secrets)


def _verified(entry: Any, index: int, trust: Trust, claimed: str | None) -> Layer:
    from signalbeam.protocol.signing import SignatureError, verify

    layer = _layer(entry, index, claimed)
    what = f"config of {Source(layer.scope, layer.name, layer.version)}"
    signatures = entry.get("signatures")
    offered = [s for s in signatures if isinstance(s, dict)] if isinstance(signatures, list) else []
    try:
        verify(trust, layer.payload(), offered, what)
    except SignatureError as err:
        raise ConfigRefused(f"{what}: {err.reason}", claimed) from err
    return layer


def _layer(entry: Any, index: int, claimed: str | None) -> Layer:
    """A wire layer as a `Layer`; a malformed one is refused naming its place."""
    where = f"config layer {index}"
    if not isinstance(entry, Mapping):
        raise ConfigRefused(f"{where} is not an object", claimed)
    scope, name, version = entry.get("scope"), entry.get("name"), entry.get("version")
    priority = entry.get("priority", 0)
    values, hashes = entry.get("values", {}), entry.get("secret_hashes", {})
    problem = None
    if scope not in SCOPES or not isinstance(name, str):
        problem = "has no valid scope and name"
    elif not _whole(version) or not _whole(priority):
        problem = "has no valid version and priority"
    elif not isinstance(values, dict) or not isinstance(hashes, dict):
        problem = "has values or secret hashes that are not objects"
    elif bad := next((k for k in [*values, *hashes] if key_problem(k)), None):
        problem = f"has an invalid key: {key_problem(bad)}"
    elif any(not isinstance(v, str) for v in hashes.values()):
        problem = "has a secret hash that is not text"
    if problem:
        raise ConfigRefused(f"{where} {problem}", claimed)
    # Each checked above; `cast` only tells mypy so.
    return Layer(
        cast(Scope, scope), cast(str, name), cast(int, version), values, hashes, cast(int, priority)
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _secrets(
    given: Any, hashes: Mapping[str, str], sources: Mapping[str, Source], claimed: str | None
) -> dict[str, str]:
    """The clear values of the merged secrets, each checked against its signed hash."""
    given = given if isinstance(given, Mapping) else {}
    out: dict[str, str] = {}
    for key, expected in hashes.items():
        value = given.get(key)
        if not isinstance(value, str):
            raise ConfigRefused(
                f"secret {key} (set in {sources[key]}) is missing from the desired config",
                claimed,
            )
        if secret_hash(value) != expected:
            raise ConfigRefused(
                f"secret {key} does not match the hash signed in {sources[key]}; refusing the config",
                claimed,
            )
        out[key] = value
    return out
