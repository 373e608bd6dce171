"""Which config layers reach which device, and the config section its desired state carries.

A device gets the tenant layer, the layer of every group it is in (static members, or
labels a dynamic group's selector matches) and its own. Devices differ only by that set, so
a section is built once per distinct set: each layer version was signed when it was
written, and its secrets are opened once per set, so ten thousand devices in one group cost
one section, not ten thousand signatures or queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from signalbeam.domain.config import schema_problem, schema_view
from signalbeam.domain.errors import InvalidInput
from signalbeam.domain.model import DesiredKind, GroupKind
from signalbeam.domain.selectors import Selector, parse_selector
from signalbeam.protocol.config_v1 import Layer, Scope, merge
from signalbeam.server.db.models import ConfigLayer
from signalbeam.server.secrets_box import SecretsBox
from signalbeam.server.services.context import UnitOfWork

LayerKey = tuple[tuple[str, str, int], ...]


def secret_context(tenant_id: int, scope: str, name: str, key: str) -> str:
    """What a layer secret is sealed for: a value moved to another tenant or layer won't open."""
    return f"tenant {tenant_id}: config {scope} {name!r} secret {key}"


def protocol_layer(row: ConfigLayer) -> Layer:
    """A stored layer version as the protocol signs and merges it."""
    scope = cast(Scope, row.scope)
    return Layer(scope, row.name, row.version, row.values, row.secret_hashes, row.priority)


@dataclass
class TenantLayers:
    """The current layers that may reach some devices, and how to tell which reach which."""

    tenant: ConfigLayer | None = None
    groups: list[tuple[ConfigLayer, int, Selector | None]] = field(default_factory=list)
    devices: dict[str, ConfigLayer] = field(default_factory=dict)
    static_members: dict[int, set[int]] = field(default_factory=dict)

    def empty(self) -> bool:
        return self.tenant is None and not self.groups and not self.devices

    def of(self, pk: int, device_id: str, labels: Mapping[str, str]) -> list[ConfigLayer]:
        """The layers that reach one device."""
        found = [self.tenant] if self.tenant is not None else []
        for row, group_id, selector in self.groups:
            member = (
                selector.matches(labels)
                if selector is not None
                else pk in self.static_members.get(group_id, ())
            )
            if member:
                found.append(row)
        device = self.devices.get(device_id)
        return found + ([device] if device is not None else [])


async def load_layers(
    uow: UnitOfWork, device_ids: Sequence[str] | None, replacing: ConfigLayer | None = None
) -> TenantLayers:
    """The current layers for these devices (all, when None); `replacing` stands in for the
    current version of its layer (a dry run's version that is not stored)."""
    tenant = await uow.config.latest("tenant", "")
    groups = {g.name: g for g in await uow.groups.all()}
    group_rows = [row for row in await uow.config.current("group") if row.name in groups]
    names = None if device_ids is None else list(device_ids)
    devices = {row.name: row for row in await uow.config.current("device", names)}
    if replacing is not None:
        if replacing.scope == "tenant":
            tenant = replacing
        elif replacing.scope == "group":
            group_rows = [r for r in group_rows if r.name != replacing.name] + [replacing]
        else:
            devices[replacing.name] = replacing
    layers = TenantLayers(tenant=tenant, devices=devices)
    for row in group_rows:
        group = groups[row.name]
        dynamic = group.kind == GroupKind.DYNAMIC
        layers.groups.append(
            (row, group.id, parse_selector(group.selector or "") if dynamic else None)
        )
    static = [group_id for _, group_id, selector in layers.groups if selector is None]
    layers.static_members = await uow.config.static_members(static)
    return layers


def layer_key(rows: Iterable[ConfigLayer]) -> LayerKey:
    return tuple(sorted((r.scope, r.name, r.version) for r in rows))


def build_section(box: SecretsBox, tenant_id: int, rows: Sequence[ConfigLayer]) -> dict[str, Any]:
    """The desired state's `config` for these layers: signed layers, clear secrets, digest."""
    layers = [protocol_layer(row) for row in rows]
    merged, hashes = merge(layers)
    by_source = {(row.scope, row.name): row for row in rows}
    secrets = {}
    for key in sorted(merged.secrets):
        source = merged.sources[key]
        row = by_source[(source.scope, source.name)]
        context = secret_context(tenant_id, row.scope, row.name, key)
        secrets[key] = box.open(str(row.secrets[key]), context)
    return {
        "layers": [layer.to_wire(row.signatures) for layer, row in zip(layers, rows, strict=True)],
        "secrets": secrets,
        "digest": merged.digest(hashes),
    }


def check_schema(
    spec: Mapping[str, Any], rows: Sequence[ConfigLayer], device_id: str, field_root: str
) -> None:
    """Refuse (422) when the effective config breaks the config schema of the device's bundle."""
    bundle = spec.get("bundle")
    schema = bundle.get("config_schema") if isinstance(bundle, dict) else None
    if schema is None:
        return
    problem = schema_problem(schema, schema_view(protocol_layer(r) for r in rows))
    if problem is None:
        return
    name = f"{bundle.get('name')}@{bundle.get('version')}" if isinstance(bundle, dict) else "?"
    where = f"{field_root}.{problem.key}" if problem.key else field_root
    raise InvalidInput(
        f"device {device_id} runs {name}, whose config schema refuses its config: at "
        f"{problem.path}: {problem.reason}",
        field=where,
    )


def is_bundle(spec: Mapping[str, Any]) -> bool:
    """Whether a desired-state document runs a bundle (only those carry config)."""
    return spec.get("kind") == DesiredKind.BUNDLE.value


async def with_config(
    uow: UnitOfWork, device_ids: Sequence[str], spec: dict[str, Any], *, strict: bool = False
) -> list[tuple[list[str], dict[str, Any]]]:
    """`spec` for each set of devices that gets the same config section (a bundle document
    gains the devices' config; any other kind goes as it is). With `strict`, a config the
    bundle's schema refuses refuses the assignment."""
    bare = {k: v for k, v in spec.items() if k != "config"}
    if not is_bundle(spec) or not device_ids:
        return [(list(device_ids), bare if is_bundle(spec) else spec)]
    layers = await load_layers(uow, device_ids)
    if layers.empty():
        if strict:
            check_schema(bare, [], sorted(device_ids)[0], "config")
        return [(list(device_ids), bare)]
    sets: dict[LayerKey, tuple[list[ConfigLayer], list[str]]] = {(): ([], [])}
    for device in await uow.config.devices(device_ids):
        rows = layers.of(device.id, device.device_id, device.labels or {})
        sets.setdefault(layer_key(rows), (rows, []))[1].append(device.device_id)
    # Decommissioned devices keep what they are given, as before there was config.
    seen = {device_id for _, ids in sets.values() for device_id in ids}
    sets[()][1].extend(d for d in device_ids if d not in seen)
    variants = []
    for rows, ids in sets.values():
        if not ids:
            continue
        if strict:
            check_schema(bare, rows, sorted(ids)[0], "config")
        section = build_section(uow.secrets, uow.actor.tenant_id, rows) if rows else None
        variants.append((ids, {**bare, "config": section} if section else bare))
    return variants


def group_by_document(
    rows: Iterable[Any], layers: TenantLayers
) -> dict[tuple[Any, ...], tuple[list[ConfigLayer], dict[str, Any], list[str]]]:
    """Bundle-running devices grouped by (document, layer set): each group gets one section."""
    groups: dict[tuple[Any, ...], tuple[list[ConfigLayer], dict[str, Any], list[str]]] = {}
    for device in rows:
        desired = device.desired_state
        if not is_bundle(desired):
            continue
        layer_rows = layers.of(device.id, device.device_id, device.labels or {})
        trust = (desired.get("trust") or {}).get("statement") or {}
        document = (desired.get("digest"), str(trust.get("version")), layer_key(layer_rows))
        entry = groups.setdefault(document, (layer_rows, desired, []))
        entry[2].append(device.device_id)
    return dict(groups)
