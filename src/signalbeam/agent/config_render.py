"""One unit's config, rendered: the env vars and files it declares, filled from the config.

Rendering is pure; `Effective` is what the reconciler hands a driver: the unit's spec with
the rendered env added (and, for a container, its files mounted read-only), and a
fingerprint that also covers what was rendered, so a config change replaces exactly the
units whose env or files changed. A unit with a reload signal keeps its files out of the
fingerprint: new files alone reach it as a signal instead of a replacement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from signalbeam.agent.config_layers import Config
from signalbeam.agent.spec import BundleSpec, ContainerSpec, UnitSpec, unit_fingerprint
from signalbeam.agent.units import UnitError
from signalbeam.protocol.canonical import canonical_json
from signalbeam.protocol.config_v1 import TEMPLATE_FIELD, template_keys, value_text
from signalbeam.protocol.spec_rules import file_mode

LIVE = "live"  # the files directory of a container that takes new files by a signal


class MissingKey(UnitError):
    """A unit uses a config key that no layer sets."""

    def __init__(self, unit: str, key: str) -> None:
        super().__init__(f"unit {unit} needs config key {key}, which no layer sets")
        self.unit, self.key = unit, key


@dataclass(frozen=True)
class RenderedFile:
    """One file as it is written: where, what and with which mode."""

    path: str
    content: bytes
    mode: int


@dataclass(frozen=True)
class Rendered:
    """A unit's rendered config: its env vars and its files."""

    env: Mapping[str, str]
    files: tuple[RenderedFile, ...]

    def env_hash(self) -> str:
        return _hash({"env": dict(self.env)})

    def files_hash(self) -> str:
        files = [{"path": f.path, "mode": f.mode, "sha256": _sha(f.content)} for f in self.files]
        return _hash({"files": files})


@dataclass(frozen=True)
class Effective:
    """A unit as the driver runs it: config env added, files mounted, fingerprint to match."""

    unit: UnitSpec  # as the bundle declares it
    spec: UnitSpec
    fingerprint: str
    rendered: Rendered | None
    files_dir: Path | None = None  # a container's rendered files, mounted from here

    @property
    def reload_signal(self) -> str | None:
        return self.unit.reload_signal if self.rendered and self.rendered.files else None


def render(unit: UnitSpec, config: Config | None) -> Rendered | None:
    """The env and files `unit` declares; None when it uses no config; `MissingKey` when a
    key it needs is not set."""
    if unit.config_env is None and unit.config_files is None:
        return None
    values: Mapping[str, object] = config.values if config else {}
    secrets = config.secrets if config else frozenset()

    def value(key: str) -> str:
        if key not in values:
            raise MissingKey(unit.name, key)
        return value_text(values[key])

    env = {name: value(key) for name, key in (unit.config_env or {}).items()}
    files = []
    for file in unit.config_files or []:
        used = [file.key] if file.key is not None else template_keys(file.template or "")
        if file.key is not None:
            text = value(file.key)
        else:
            text = TEMPLATE_FIELD.sub(lambda m: value(m.group(1)), file.template or "")
        mode = file_mode(file.mode, any(key in secrets for key in used))
        files.append(RenderedFile(file.path, text.encode(), mode))
    return Rendered(env, tuple(files))


def effective_units(bundle: BundleSpec, config: Config | None, root: Path) -> list[Effective]:
    """Every unit of `bundle` with `config` rendered in; `root` holds containers' files."""
    return [effective(unit, config, root) for unit in bundle.units]


def effective(unit: UnitSpec, config: Config | None, root: Path) -> Effective:
    """One unit with its config rendered in (see the module docstring)."""
    rendered = render(unit, config)
    base = unit_fingerprint(unit)
    if rendered is None:
        return Effective(unit, unit, base, None)
    reloads = unit.reload_signal is not None
    parts = [base, rendered.env_hash(), "" if reloads else rendered.files_hash()]
    fingerprint = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    # The driver runs the result; its config declarations are rendered in, so they go.
    env = {**unit.env, **rendered.env}
    plain = msgspec.structs.replace(unit, env=env, config_env=None, config_files=None)
    if not isinstance(plain, ContainerSpec) or not rendered.files:
        return Effective(unit, plain, fingerprint, rendered)
    # A signalled container keeps one directory, rewritten in place: its mounts see the new
    # bytes. Any other gets one per content, so its old copy keeps its files while the new
    # one starts beside it.
    files_dir = root / unit.name / (LIVE if reloads else rendered.files_hash())
    mounts = [f"{files_dir / f.path.lstrip('/')}:{f.path}:ro" for f in rendered.files]
    spec = msgspec.structs.replace(plain, volumes=[*plain.volumes, *mounts])
    return Effective(unit, spec, fingerprint, rendered, files_dir)


def _hash(document: dict[str, object]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()[:16]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
