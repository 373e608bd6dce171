"""Bundle spec v1: the document an operator pushes and an agent runs.

A bundle version names the containers and native apps a device should run. It is parsed
strictly (unknown keys are errors) and every error carries its path, e.g.
`containers[1].image: required`. The canonical JSON form (sorted keys, defaults filled in)
is what the content digest covers, so two documents that mean the same thing share a digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

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
    SECONDS_PATTERN,
    SHA256_PATTERN,
    TCP_SCHEMA,
    URL_PATTERN,
    VOLUME_MAPPING_PATTERN,
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

UnitName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
BundleName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
ArtifactName = Annotated[str, StringConstraints(pattern=ARTIFACT_NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]
ConfigKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
FileMode = Annotated[str, StringConstraints(pattern=FILE_MODE_PATTERN)]
ReloadSignal = Literal["SIGHUP", "SIGUSR1", "SIGUSR2"]

Seconds = Annotated[
    float,
    BeforeValidator(parse_seconds),
    Field(gt=0, le=MAX_SECONDS),
    PlainSerializer(format_seconds, return_type=str),
    # What `parse_seconds` reads, for the API's schema: a number, or text such as 30s or 2m.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS},
                {"type": "string", "pattern": SECONDS_PATTERN},
            ]
        },
        mode="validation",
    ),
]


def _exactly_one(*names: str) -> dict[str, Any]:
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


class SpecModel(BaseModel):
    """Strict, immutable spec model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HealthCheck(SpecModel):
    # `_one_probe` checks this; the schema states it for the API document.
    model_config = ConfigDict(json_schema_extra=_exactly_one("http", "tcp", "exec", "running-for"))

    """How the agent decides a container or app is healthy; exactly one probe is given.

    `http`: a URL that must answer 2xx. `tcp`: a port on 127.0.0.1 (or `host:port`) that must
    accept a connection. `exec`: a command that must exit 0 (inside the container, or in the
    app's directory). `running_for`: the process merely has to stay up this long.
    `timeout` bounds the wait for the first success after a start.
    """

    http: str | None = Field(default=None, pattern=URL_PATTERN, max_length=2000)
    tcp: int | str | None = Field(default=None, json_schema_extra=TCP_SCHEMA)
    exec_: list[str] | None = Field(default=None, alias="exec", min_length=1, max_length=64)
    running_for: Seconds | None = Field(default=None, alias="running-for")
    timeout: Seconds = 60.0
    interval: Seconds = 1.0

    @model_validator(mode="after")
    def _one_probe(self) -> HealthCheck:
        problem = probe_problem(self.http, self.tcp, self.exec_, self.running_for)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def probe(self) -> str:
        """A short human description of the probe, for reasons and logs."""
        return describe_probe(self.http, self.tcp, self.exec_, self.running_for)


DEFAULT_HEALTH = HealthCheck.model_validate({"running-for": 3, "timeout": 30})

UpdateOrder = Literal["start-first", "stop-first"]

PortMapping = Annotated[str, StringConstraints(pattern=PORT_MAPPING_PATTERN)]
VolumeMapping = Annotated[str, StringConstraints(pattern=VOLUME_MAPPING_PATTERN)]


class ConfigFile(SpecModel):
    """A file rendered from config: one key's value, or a template of `{{ KEY }}` fields.

    `mode` is octal text (`"0640"`); unset, a file holding a secret gets 0600, others 0644.
    """

    model_config = ConfigDict(json_schema_extra=_exactly_one("key", "template"))

    path: str = Field(min_length=1, max_length=MAX_CONFIG_PATH)
    key: ConfigKey | None = None
    template: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    mode: FileMode | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ConfigFile:
        problem = config_file_problem(self.key, self.template)
        if problem:
            raise ValueError(problem)
        return self


class AppConfigFile(ConfigFile):
    """A config file inside an app's directory: `path` is relative and stays inside."""

    @field_validator("path")
    @classmethod
    def _inside(cls, path: str) -> str:
        problem = app_file_problem(path)
        if problem:
            raise ValueError(problem)
        return path


class ContainerConfigFile(ConfigFile):
    """A config file mounted read-only into a container: `path` is absolute in there."""

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        problem = container_file_problem(path)
        if problem:
            raise ValueError(problem)
        return path


def _config_clash(unit: ContainerSpec | AppSpec) -> None:
    problem = config_env_problem(unit.env, unit.config_env) or config_files_problem(
        f.path for f in unit.config_files or []
    )
    if problem:
        raise ValueError(problem)


class ContainerSpec(SpecModel):
    """One container, run through the device's container engine (Docker or Podman)."""

    name: UnitName
    image: str = Field(min_length=1, max_length=500, pattern=IMAGE_PATTERN)
    command: list[str] | None = Field(default=None, max_length=256)
    env: dict[EnvName, str] = Field(default={}, max_length=256)
    ports: list[PortMapping] = Field(default=[], max_length=64)
    volumes: list[VolumeMapping] = Field(default=[], max_length=64)
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    health: HealthCheck | None = None
    update_order: UpdateOrder | None = None
    config_env: dict[EnvName, ConfigKey] | None = Field(default=None, max_length=256)
    config_files: list[ContainerConfigFile] | None = Field(
        default=None, max_length=MAX_CONFIG_FILES
    )
    reload_signal: ReloadSignal | None = None

    @model_validator(mode="after")
    def _config(self) -> ContainerSpec:
        _config_clash(self)
        return self

    @field_validator("update_order")
    @classmethod
    def _two_copies_possible(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = update_order_problem(value, info.data.get("ports", []))
        if problem:
            raise ValueError(problem)
        return value

    @property
    def kind(self) -> Literal["container"]:
        return "container"

    @property
    def order(self) -> str:
        """How a change replaces the running copy (see `spec_rules.container_update_order`)."""
        return container_update_order(self.update_order, list(self.ports))

    @property
    def health_check(self) -> HealthCheck:
        """The declared check, or the default (stays running for 3 s)."""
        return self.health or DEFAULT_HEALTH


class ArtifactRef(SpecModel):
    """Where a native app's files come from, pinned by their sha256.

    With `url` the agent downloads from there. Without it the blob comes from the control
    plane that sent the bundle (`GET /api/device/v1/artifacts/{sha256}`); `name` records
    which upload a push resolved the digest from.
    """

    url: str | None = Field(default=None, pattern=URL_PATTERN, max_length=2000)
    sha256: Sha256Hex
    name: ArtifactName | None = None

    @model_serializer(mode="wrap")
    def _present_keys_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Absent keys stay absent in every dump, so a unit written as {url, sha256} keeps the
        # fingerprint it had before url became optional, and running apps are not replaced.
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if value is not None}


class AppSpec(SpecModel):
    """One native process, supervised by the agent, for devices without a container engine."""

    name: UnitName
    artifact: ArtifactRef
    command: list[str] = Field(min_length=1, max_length=256)
    env: dict[EnvName, str] = Field(default={}, max_length=256)
    health: HealthCheck | None = None
    update_order: UpdateOrder | None = None
    config_env: dict[EnvName, ConfigKey] | None = Field(default=None, max_length=256)
    config_files: list[AppConfigFile] | None = Field(default=None, max_length=MAX_CONFIG_FILES)
    reload_signal: ReloadSignal | None = None

    @model_validator(mode="after")
    def _config(self) -> AppSpec:
        _config_clash(self)
        return self

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


class BundleSpec(SpecModel):
    """A bundle version: immutable once pushed, identified by `digest()`."""

    # `_units` checks this (and that names are unique, which JSON Schema cannot state).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["containers"], "properties": {"containers": {"minItems": 1}}},
                {"required": ["apps"], "properties": {"apps": {"minItems": 1}}},
            ]
        }
    )

    name: BundleName
    version: Annotated[str, StringConstraints(pattern=SEMVER_PATTERN)]
    description: str = Field(default="", max_length=2000)
    containers: list[ContainerSpec] = Field(default=[], max_length=64)
    apps: list[AppSpec] = Field(default=[], max_length=64)
    # A JSON Schema (draft 2020-12) the device's effective config must satisfy.
    config_schema: dict[str, Any] | None = None

    @field_validator("config_schema")
    @classmethod
    def _a_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        problem = config_schema_problem(schema) or _meta_problem(schema)
        if problem:
            raise ValueError(problem)
        return schema

    @model_validator(mode="after")
    def _units(self) -> BundleSpec:
        problem = units_problem(unit.name for unit in self.units)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def units(self) -> list[UnitSpec]:
        """Containers then apps, in the order written."""
        return [*self.containers, *self.apps]

    @property
    def ref(self) -> str:
        """`name@version`, as people write it."""
        return f"{self.name}@{self.version}"

    def canonical(self) -> dict[str, Any]:
        """The normalised document: defaults filled in, durations as text."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        """`sha256:<hex>` over the canonical JSON (sorted keys, no spaces, UTF-8)."""
        return "sha256:" + hashlib.sha256(canonical_json(self.canonical())).hexdigest()


def _meta_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a valid draft 2020-12 JSON Schema (a server-side check only)."""
    try:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError
    except ImportError:  # without the validator the structural check is what remains
        return None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        where = "/".join(str(part) for part in err.path) or "the top"
        return f"not a valid JSON Schema at {where}: {err.message}"
    return None


def unit_fingerprint(unit: UnitSpec) -> str:
    """A short hash of one unit's spec: a change to it means the unit must be replaced.

    The update order and the reload signal are left out: they say how to replace a unit (or
    hand it new files), not what runs, so changing one alone replaces nothing. Config fields
    are left out while unset, so units pushed before config existed keep their fingerprints.
    """
    unset = {name for name in CONFIG_UNIT_FIELDS if getattr(unit, name) is None}
    dumped = unit.model_dump(
        mode="json", by_alias=True, exclude={"update_order", "reload_signal", *unset}
    )
    if "config_files" in dumped:
        dumped["config_files"] = [
            {k: v for k, v in file.items() if v is not None} for file in dumped["config_files"]
        ]
    body = canonical_json({"kind": unit.kind, **dumped})
    return hashlib.sha256(body).hexdigest()[:16]


def parse_bundle(document: Any) -> BundleSpec:
    """Validate a decoded YAML/JSON document, or raise `InvalidInput` listing every error."""
    if not isinstance(document, Mapping):
        raise InvalidInput(
            "a bundle is a mapping with name, version and containers and/or apps", field="bundle"
        )
    try:
        return BundleSpec.model_validate(document)
    except ValidationError as err:
        problems = describe_errors(err.errors(include_url=False))
        raise InvalidInput("; ".join(problems), field=problems[0].split(":", 1)[0]) from err


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """Pydantic errors as `containers[1].image: required` lines."""
    return [f"{_path(error['loc'])}: {_message(error)}" for error in errors]


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "constrained-", "json-or-python")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "bundle"


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; unknown keys are not ignored)"
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        # YAML reads `version: 1.0` or `LOG_LEVEL: 2` as numbers.
        return f"{error.get('input')!r} is a number here; quote it to make it text"
    if kind == "string_pattern_mismatch":
        return f"{error.get('input')!r} is not valid here ({_pattern_hint(error)})"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _pattern_hint(error: Mapping[str, Any]) -> str:
    pattern = str((error.get("ctx") or {}).get("pattern", ""))
    hints = {
        NAME_PATTERN: "lower-case letters, digits and dashes, at most 63",
        SEMVER_PATTERN: "a semantic version like 1.2.0",
        r"^[0-9a-f]{64}$": "64 lower-case hex digits",
        r"^https?://": "an http:// or https:// URL",
        ARTIFACT_NAME_PATTERN: "letters, digits, dots, dashes, underscores, plus; at most 128",
        FILE_MODE_PATTERN: "a file mode in octal, like 0640",
        KEY_PATTERN: "a config key: a letter or _, then letters, digits, _ . -; at most 128",
        ENV_NAME_PATTERN: "an environment variable name: a letter or _, then letters, digits, _",
    }
    return hints.get(pattern, f"must match {pattern}")
