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
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from signalbeam.agent.wire import where
from signalbeam.domain.artifacts import ARTIFACT_NAME_PATTERN
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.semver import SEMVER_PATTERN
from signalbeam.protocol.canonical import canonical_json
from signalbeam.protocol.config_v1 import KEY_PATTERN
from signalbeam.protocol.spec_rules import (
    CONFIG_UNIT_FIELDS,
    ENV_NAME_PATTERN,
    FILE_MODE_PATTERN,
    IMAGE_PATTERN,
    MAX_CONFIG_FILES,
    MAX_CONFIG_PATH,
    MAX_SECONDS,
    MAX_TEMPLATE_CHARS,
    NAME_PATTERN,
    PORT_MAPPING_PATTERN,
    SHA256_PATTERN,
    URL_PATTERN,
    VOLUME_MAPPING_PATTERN,
    anchored,
    app_file_problem,
    app_update_order,
    config_env_problem,
    config_file_problem,
    config_files_problem,
    config_schema_problem,
    container_file_problem,
    container_update_order,
    describe_probe,
    format_seconds,
    parse_seconds,
    probe_problem,
    units_problem,
    update_order_problem,
)

Name = Annotated[str, Meta(pattern=anchored(NAME_PATTERN))]
Sha256Hex = Annotated[str, Meta(pattern=anchored(SHA256_PATTERN))]
ArtifactName = Annotated[str, Meta(pattern=anchored(ARTIFACT_NAME_PATTERN))]
EnvName = Annotated[str, Meta(pattern=anchored(ENV_NAME_PATTERN))]
Url = Annotated[str, Meta(pattern=URL_PATTERN, max_length=2000)]
PortMapping = Annotated[str, Meta(pattern=anchored(PORT_MAPPING_PATTERN))]
VolumeMapping = Annotated[str, Meta(pattern=anchored(VOLUME_MAPPING_PATTERN))]
Env = Annotated[dict[EnvName, str], Meta(max_length=256)]
ConfigKey = Annotated[str, Meta(pattern=anchored(KEY_PATTERN))]
ConfigEnv = Annotated[dict[EnvName, ConfigKey], Meta(max_length=256)]
FileMode = Annotated[str, Meta(pattern=anchored(FILE_MODE_PATTERN))]
ReloadSignal = Literal["SIGHUP", "SIGUSR1", "SIGUSR2"]


class Seconds(float):
    """A duration in seconds: `60s`, `2m`, `500ms` or a bare number in a bundle, `60s` out."""

    @classmethod
    def read(cls, value: object) -> Seconds:
        """Parse a duration as the server does; ValueError names what is wrong."""
        seconds = parse_seconds(value)
        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"a duration must be more than 0s and at most {MAX_SECONDS:g}s")
        return cls(seconds)

    def text(self) -> str:
        """How the canonical form writes it."""
        return format_seconds(self)


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
        problem = probe_problem(self.http, self.tcp, self.exec_, self.running_for)
        if problem:
            raise ValueError(problem)

    @property
    def probe(self) -> str:
        """A short human description of the probe, for reasons and logs."""
        return describe_probe(self.http, self.tcp, self.exec_, self.running_for)


DEFAULT_HEALTH = HealthCheck(running_for=Seconds(3), timeout=Seconds(30))

UpdateOrder = Literal["start-first", "stop-first"]


class ConfigFile(Spec, kw_only=True, frozen=True):
    """A file rendered from config: one key's value, or a `{{ KEY }}` template (see `bundle_v1`)."""

    path: Annotated[str, Meta(min_length=1, max_length=MAX_CONFIG_PATH)]
    key: ConfigKey | None = None
    template: Annotated[str, Meta(max_length=MAX_TEMPLATE_CHARS)] | None = None
    mode: FileMode | None = None

    def __post_init__(self) -> None:
        problem = config_file_problem(self.key, self.template)
        if problem:
            raise ValueError(problem)


class AppConfigFile(ConfigFile, kw_only=True, frozen=True):
    """A config file inside an app's directory: `path` is relative and stays inside."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = app_file_problem(self.path)
        if problem:
            raise ValueError(f"path: {problem}")


class ContainerConfigFile(ConfigFile, kw_only=True, frozen=True):
    """A config file mounted read-only into a container: `path` is absolute in there."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = container_file_problem(self.path)
        if problem:
            raise ValueError(f"path: {problem}")


def _config_clash(unit: ContainerSpec | AppSpec) -> None:
    problem = config_env_problem(unit.env, unit.config_env) or config_files_problem(
        f.path for f in unit.config_files or []
    )
    if problem:
        raise ValueError(problem)


class ContainerSpec(Spec, kw_only=True, frozen=True):
    """One container, run through the device's container engine (Docker or Podman)."""

    name: Name
    image: Annotated[str, Meta(min_length=1, max_length=500, pattern=anchored(IMAGE_PATTERN))]
    command: Annotated[list[str], Meta(max_length=256)] | None = None
    env: Env = {}
    ports: Annotated[list[PortMapping], Meta(max_length=64)] = []
    volumes: Annotated[list[VolumeMapping], Meta(max_length=64)] = []
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    health: HealthCheck | None = None
    update_order: UpdateOrder | None = None
    config_env: ConfigEnv | None = None
    config_files: Annotated[list[ContainerConfigFile], Meta(max_length=MAX_CONFIG_FILES)] | None = (
        None
    )
    reload_signal: ReloadSignal | None = None

    def __post_init__(self) -> None:
        problem = update_order_problem(self.update_order, self.ports)
        if problem:
            raise ValueError(f"update_order: {problem}")
        _config_clash(self)

    @property
    def kind(self) -> Literal["container"]:
        return "container"

    @property
    def order(self) -> str:
        """How a change replaces the running copy (see `spec_rules.container_update_order`)."""
        return container_update_order(self.update_order, self.ports)

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

    name: Name
    artifact: ArtifactRef
    command: Annotated[list[str], Meta(min_length=1, max_length=256)]
    env: Env = {}
    health: HealthCheck | None = None
    update_order: UpdateOrder | None = None
    config_env: ConfigEnv | None = None
    config_files: Annotated[list[AppConfigFile], Meta(max_length=MAX_CONFIG_FILES)] | None = None
    reload_signal: ReloadSignal | None = None

    def __post_init__(self) -> None:
        _config_clash(self)

    @property
    def kind(self) -> Literal["app"]:
        return "app"

    @property
    def order(self) -> str:
        """How a change replaces the running copy (see `spec_rules.app_update_order`)."""
        return app_update_order(self.update_order)

    @property
    def health_check(self) -> HealthCheck:
        """The declared check, or the default (stays running for 3 s)."""
        return self.health or DEFAULT_HEALTH


UnitSpec = ContainerSpec | AppSpec
U = TypeVar("U", ContainerSpec, AppSpec)


class BundleSpec(Spec, kw_only=True, frozen=True):
    """A bundle version: immutable once pushed, identified by `digest()`."""

    name: Name
    version: Annotated[str, Meta(pattern=anchored(SEMVER_PATTERN))]
    description: Annotated[str, Meta(max_length=2000)] = ""
    containers: Annotated[list[ContainerSpec], Meta(max_length=64)] = []
    apps: Annotated[list[AppSpec], Meta(max_length=64)] = []
    # Checked fully by the server (a JSON Schema validator the agent does not carry).
    config_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problem = units_problem(unit.name for unit in self.units)
        if problem:
            raise ValueError(problem)
        if self.config_schema is not None and (
            problem := config_schema_problem(self.config_schema)
        ):
            raise ValueError(f"config_schema: {problem}")

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
        keep = keep_none and not isinstance(value, ArtifactRef | ConfigFile)
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
    """A short hash of one unit's spec: a change to it means the unit must be replaced.

    The update order and the reload signal are left out, as on the server: they say how to
    replace, not what runs. Unset config fields are left out, as on the server.
    """
    dumped = plain(unit, keep_none=True)
    dumped.pop("update_order", None)
    dumped.pop("reload_signal", None)
    for name in CONFIG_UNIT_FIELDS:
        if dumped.get(name, "") is None:
            del dumped[name]
    body = canonical_json({"kind": unit.kind, **dumped})
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
