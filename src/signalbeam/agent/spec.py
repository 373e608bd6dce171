"""The bundle spec as the agent reads it: msgspec structs mirroring `protocol.bundle_v1`.

The server validates what operators push with the pydantic models and hands devices the
canonical form. The agent decodes that form into these structs (checked again, so a
damaged document is refused here too) without loading pydantic, and must compute the very
same canonical JSON, digest and unit fingerprints: a digest that differed would refuse a
good bundle, and a fingerprint that differed would restart every unit after an upgrade.
`tests/agent/test_spec_contract.py` holds the two definitions together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from signalbeam.agent.wire import where
from signalbeam.domain.artifacts import ARTIFACT_NAME_PATTERN
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.semver import SEMVER_PATTERN
from signalbeam.protocol.canonical import canonical_json


def _whole(pattern: str) -> str:
    # Pydantic's `$` matches only at the very end; Python's also before a final newline.
    return pattern.removesuffix("$") + r"\Z"


NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"
UnitName = Annotated[str, Meta(pattern=NAME_PATTERN)]
Sha256Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
ArtifactName = Annotated[str, Meta(pattern=_whole(ARTIFACT_NAME_PATTERN))]
EnvName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")]
Url = Annotated[str, Meta(pattern=r"^https?://", max_length=2000)]
PortMapping = Annotated[
    str, Meta(pattern=r"^(\d{1,3}(\.\d{1,3}){3}:)?\d{1,5}:\d{1,5}(/(tcp|udp))?\Z")
]
VolumeMapping = Annotated[str, Meta(pattern=r"^[^:\s]+:/[^:\s]*(:(ro|rw))?\Z")]
Env = Annotated[dict[EnvName, str], Meta(max_length=256)]

# `:g` writes 0.00005 as 5e-05, so the exponent is accepted too: the canonical text of a
# duration the server accepted must read back.
_DURATION = re.compile(r"^(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_SECONDS = 86400.0


class Seconds(float):
    """A duration in seconds: `60s`, `2m`, `500ms` or a bare number in a bundle, `60s` out."""

    @classmethod
    def read(cls, value: object) -> Seconds:
        """Parse a duration as the server does; ValueError names what is wrong."""
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
            seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if seconds is None:
            raise ValueError("write a duration like 30s, 2m or 500ms")
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"a duration must be more than 0s and at most {MAX_SECONDS:g}s")
        return cls(seconds)

    def text(self) -> str:
        """How the canonical form writes it."""
        return f"{self:g}s"


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Seconds:
        return Seconds.read(value)
    raise NotImplementedError(f"cannot decode {kind}")


class Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Strict, immutable: unknown keys are errors here as on the server."""


class HealthCheck(
    Spec, kw_only=True, rename={"exec_": "exec", "running_for": "running-for"}, frozen=True
):
    """How the agent decides a unit is healthy; exactly one probe (see `bundle_v1`)."""

    http: Url | None = None
    tcp: int | str | None = None
    exec_: Annotated[list[str], Meta(min_length=1, max_length=64)] | None = None
    running_for: Seconds | None = None
    timeout: Seconds = Seconds(60.0)
    interval: Seconds = Seconds(1.0)

    def __post_init__(self) -> None:
        given = [
            name
            for name, value in (
                ("http", self.http),
                ("tcp", self.tcp),
                ("exec", self.exec_),
                ("running-for", self.running_for),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of http, tcp, exec or running-for"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if isinstance(self.tcp, int) and not 0 < self.tcp < 65536:
            raise ValueError("tcp: a port is a number from 1 to 65535")
        if isinstance(self.tcp, str) and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+:\d{1,5}", self.tcp):
            raise ValueError("tcp: give a port (9000) or host:port (127.0.0.1:9000)")

    @property
    def probe(self) -> str:
        """A short human description of the probe, for reasons and logs."""
        if self.http is not None:
            return self.http
        if self.tcp is not None:
            return f"tcp {self.tcp}"
        if self.exec_ is not None:
            return "exec " + " ".join(self.exec_)
        return f"running for {self.running_for or 0:g}s"


DEFAULT_HEALTH = HealthCheck(running_for=Seconds(3), timeout=Seconds(30))


class ContainerSpec(Spec, kw_only=True, frozen=True):
    """One container, run through the device's container engine (Docker or Podman)."""

    name: UnitName
    image: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"^[^\s]+\Z")]
    command: Annotated[list[str], Meta(max_length=256)] | None = None
    env: Env = {}
    ports: Annotated[list[PortMapping], Meta(max_length=64)] = []
    volumes: Annotated[list[VolumeMapping], Meta(max_length=64)] = []
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    health: HealthCheck | None = None

    @property
    def kind(self) -> Literal["container"]:
        return "container"

    @property
    def health_check(self) -> HealthCheck:
        """The declared check, or the default (stays running for 3 s)."""
        return self.health or DEFAULT_HEALTH


class ArtifactRef(Spec, kw_only=True, frozen=True):
    """Where a native app's files come from, pinned by their sha256 (no `url`: the server)."""

    url: Url | None = None
    sha256: Sha256Hex
    name: ArtifactName | None = None


class AppSpec(Spec, kw_only=True, frozen=True):
    """One native process, supervised by the agent, for devices without a container engine."""

    name: UnitName
    artifact: ArtifactRef
    command: Annotated[list[str], Meta(min_length=1, max_length=256)]
    env: Env = {}
    health: HealthCheck | None = None

    @property
    def kind(self) -> Literal["app"]:
        return "app"

    @property
    def health_check(self) -> HealthCheck:
        """The declared check, or the default (stays running for 3 s)."""
        return self.health or DEFAULT_HEALTH


UnitSpec = ContainerSpec | AppSpec
U = TypeVar("U", ContainerSpec, AppSpec)


class BundleSpec(Spec, kw_only=True, frozen=True):
    """A bundle version: immutable once pushed, identified by `digest()`."""

    name: Annotated[str, Meta(pattern=NAME_PATTERN)]
    version: Annotated[str, Meta(pattern=_whole(SEMVER_PATTERN))]
    description: Annotated[str, Meta(max_length=2000)] = ""
    containers: Annotated[list[ContainerSpec], Meta(max_length=64)] = []
    apps: Annotated[list[AppSpec], Meta(max_length=64)] = []

    def __post_init__(self) -> None:
        if not self.containers and not self.apps:
            raise ValueError("a bundle needs at least one entry under containers or apps")
        seen: set[str] = set()
        for unit in self.units:
            if unit.name in seen:
                raise ValueError(
                    f'the name "{unit.name}" is used twice; containers and apps need unique names'
                )
            seen.add(unit.name)

    @property
    def units(self) -> list[UnitSpec]:
        """Containers then apps, in the order written."""
        return [*self.containers, *self.apps]

    @property
    def ref(self) -> str:
        """`name@version`, as people write it."""
        return f"{self.name}@{self.version}"

    def canonical(self) -> dict[str, Any]:
        """The normalised document: defaults filled in, durations as text, no nulls."""
        document: dict[str, Any] = plain(self, keep_none=False)
        return document

    def digest(self) -> str:
        """`sha256:<hex>` over the canonical JSON (sorted keys, no spaces, UTF-8)."""
        return "sha256:" + hashlib.sha256(canonical_json(self.canonical())).hexdigest()


def plain(value: Any, *, keep_none: bool = True) -> Any:
    """JSON values as pydantic's `model_dump(mode="json", by_alias=True)` gives them."""
    if isinstance(value, Seconds):
        return value.text()
    if isinstance(value, msgspec.Struct):
        # An artifact reference never writes absent keys, even where other nulls are kept:
        # that keeps the fingerprint apps had before `url` became optional.
        keep = keep_none and not isinstance(value, ArtifactRef)
        return {
            f.encode_name: plain(getattr(value, f.name), keep_none=keep_none)
            for f in msgspec.structs.fields(value)
            if keep or getattr(value, f.name) is not None
        }
    if isinstance(value, list):
        return [plain(item, keep_none=keep_none) for item in value]
    if isinstance(value, dict):
        return {key: plain(item, keep_none=keep_none) for key, item in value.items()}
    return value


def unit_fingerprint(unit: UnitSpec) -> str:
    """A short hash of one unit's spec: a change to it means the unit must be replaced."""
    body = canonical_json({"kind": unit.kind, **plain(unit, keep_none=True)})
    return hashlib.sha256(body).hexdigest()[:16]


def parse_bundle(document: Any) -> BundleSpec:
    """Decode a bundle document, or raise `InvalidInput` naming the first problem's path."""
    if not isinstance(document, Mapping):
        raise InvalidInput(
            "a bundle is a mapping with name, version and containers and/or apps", field="bundle"
        )
    try:
        return msgspec.convert(document, BundleSpec, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as err:
        path, problem = where(err)
        raise InvalidInput(f"{path or 'bundle'}: {problem}", field=path or "bundle") from err


def parse_unit(document: Any, kind: type[U]) -> U:
    """One container or app spec on its own; raises `msgspec.ValidationError`."""
    return msgspec.convert(document, kind, strict=False, dec_hook=_dec_hook)
