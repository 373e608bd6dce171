"""Config layers: read, change (PATCH, PUT, rollback, each optionally a dry run), history, diff.

Every change is a new, immutable version signed by the server key, written in the same
transaction as the new desired state of every bundle-running device the layer reaches, and
recorded as a `config.changed` event (keys only, never a secret's value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.config import (
    Change,
    LayerContent,
    Patch,
    apply_patch,
    check_priority,
    check_size,
    diff,
    replace_values,
)
from signalbeam.domain.errors import Conflict, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.config_v1 import Scope, layer_payload
from signalbeam.server.db.models import ConfigLayer
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config_delivery import protocol_layer, secret_context
from signalbeam.server.services.config_refresh import refresh_layer
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.desired import Pending, announce_desired
from signalbeam.server.services.devices import DeviceFilter, matching_ids
from signalbeam.server.services.signing import _server_pair, ensure_trust

OPERATOR_KEYS_ONLY = (
    "config signing by operator keys is not supported yet: this tenant trusts operator keys "
    "only, so its devices would refuse config signed by the server; config can change again "
    "once operator-keys-only is off (signalbeam keys policy --server-key-trusted)"
)


@dataclass(frozen=True)
class LayerRef:
    """Which layer: the tenant's (name ""), a group's or a device's."""

    scope: Scope
    name: str = ""

    def __str__(self) -> str:
        return "tenant" if self.scope == "tenant" else f"{self.scope} {self.name}"


@dataclass(frozen=True)
class LayerView:
    """One layer version as people see it: secret names, never values (version 0: none yet)."""

    scope: Scope
    name: str
    version: int
    priority: int
    values: dict[str, Any]
    secrets: list[str]
    author: str | None
    message: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class ConfigChangeResult:
    """A new version (or, in a dry run, the one it would be), what changed, and its reach."""

    layer: LayerView
    changes: list[Change]
    affected_devices: int
    unchanged: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    author: str
    message: str
    created_at: datetime
    changes: list[Change]


def content_of(row: ConfigLayer | None) -> LayerContent:
    """What a stored version says (nothing, for a layer never written)."""
    if row is None:
        return LayerContent()
    return LayerContent(dict(row.values), dict(row.secret_hashes), row.priority)


def view_of(ref: LayerRef, row: ConfigLayer | None) -> LayerView:
    if row is None:
        return LayerView(ref.scope, ref.name, 0, 0, {}, [], None, None, None)
    return LayerView(
        ref.scope,
        ref.name,
        row.version,
        row.priority,
        dict(row.values),
        sorted(row.secret_hashes),
        row.author,
        row.message,
        row.created_at,
    )


async def _exists(uow: UnitOfWork, ref: LayerRef) -> None:
    if ref.scope == "group" and await uow.groups.get(ref.name) is None:
        raise NotFound(
            f'no group "{ref.name}"; list groups with `signalbeam groups ls`', field="group"
        )
    if ref.scope == "device" and await uow.devices.get(ref.name) is None:
        raise NotFound(
            f'no device "{ref.name}" in this tenant; list devices with `signalbeam devices ls`',
            field="device_id",
        )


async def get_layer(runtime: Runtime, actor: Actor, ref: LayerRef) -> LayerView:
    """The current version of a layer (version 0 when it was never written)."""
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        return view_of(ref, await uow.config.latest(ref.scope, ref.name))


async def get_version(runtime: Runtime, actor: Actor, ref: LayerRef, version: int) -> LayerView:
    """Version `version` of a layer, or a 404 naming `version`."""
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        return view_of(ref, await _version(uow, ref, version, "version"))


async def _version(uow: UnitOfWork, ref: LayerRef, version: int, field: str) -> ConfigLayer:
    row = await uow.config.version(ref.scope, ref.name, version)
    if row is None:
        latest = await uow.config.latest(ref.scope, ref.name)
        have = f"versions 1..{latest.version}" if latest else "no versions yet"
        raise NotFound(f"{ref} has no config version {version} ({have})", field=field)
    return row


async def history(
    runtime: Runtime, actor: Actor, ref: LayerRef, limit: int, offset: int
) -> tuple[list[HistoryEntry], int]:
    """A page of versions, newest first, each with what it changed from the one before."""
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        rows, total = await uow.config.history(ref.scope, ref.name, limit, offset)
    entries = []
    for index, row in enumerate(rows[:limit]):
        before = rows[index + 1] if index + 1 < len(rows) else None
        if before is None and row.version > 1:
            async with runtime.unit_of_work(actor) as uow:
                before = await uow.config.version(ref.scope, ref.name, row.version - 1)
        changes = diff(content_of(before), content_of(row))
        entries.append(HistoryEntry(row.version, row.author, row.message, row.created_at, changes))
    return entries, total


async def diff_versions(
    runtime: Runtime, actor: Actor, ref: LayerRef, old: int, new: int
) -> list[Change]:
    """What changed from version `old` to version `new` (0 is the empty layer before v1)."""
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        before = None if old == 0 else await _version(uow, ref, old, "from")
        after = None if new == 0 else await _version(uow, ref, new, "to")
    return diff(content_of(before), content_of(after))


@dataclass(frozen=True)
class Write:
    """What a change asks for, apart from the content it computes from the current version."""

    message: str
    expected_version: int | None
    dry_run: bool
    field_root: str


Make = Callable[[UnitOfWork, ConfigLayer | None], tuple[LayerContent, dict[str, str]]]


async def patch(
    runtime: Runtime, actor: Actor, ref: LayerRef, change: Patch, write: Write
) -> ConfigChangeResult:
    """Set, unset and set secrets; keys not named keep their values."""
    actor.require(Role.OPERATOR)
    check_priority(change.priority, ref.scope)

    def make(uow: UnitOfWork, current: ConfigLayer | None) -> tuple[LayerContent, dict[str, str]]:
        content = apply_patch(content_of(current), change)
        return content, _sealed(uow, ref, current, content, change.secrets)

    return await _write(runtime, actor, ref, make, write)


async def put(
    runtime: Runtime,
    actor: Actor,
    ref: LayerRef,
    values: object,
    priority: int | None,
    write: Write,
) -> ConfigChangeResult:
    """Replace the non-secret values; secrets are kept (unless a value now takes the key)."""
    actor.require(Role.OPERATOR)
    check_priority(priority, ref.scope)

    def make(uow: UnitOfWork, current: ConfigLayer | None) -> tuple[LayerContent, dict[str, str]]:
        content = replace_values(content_of(current), values, priority)
        return content, _sealed(uow, ref, current, content, {})

    return await _write(runtime, actor, ref, make, write)


async def rollback(
    runtime: Runtime, actor: Actor, ref: LayerRef, to: int, write: Write
) -> ConfigChangeResult:
    """A new version with version `to`'s values, secrets and priority."""
    actor.require(Role.OPERATOR)
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        target = await _version(uow, ref, to, "to")
        content, sealed = content_of(target), dict(target.secrets)

    def make(uow: UnitOfWork, current: ConfigLayer | None) -> tuple[LayerContent, dict[str, str]]:
        return content, sealed

    message = write.message or f"rollback to version {to}"
    return await _write(runtime, actor, ref, make, replace(write, message=message))


def _sealed(
    uow: UnitOfWork,
    ref: LayerRef,
    current: ConfigLayer | None,
    content: LayerContent,
    new: Mapping[str, Any],
) -> dict[str, str]:
    """Each secret of `content` sealed: new ones now, kept ones as they were stored."""
    kept = dict(current.secrets) if current is not None else {}
    tenant = uow.actor.tenant_id
    return {
        key: uow.secrets.seal(str(new[key]), secret_context(tenant, ref.scope, ref.name, key))
        if key in new
        else str(kept[key])
        for key in content.secret_hashes
    }


def _clear(uow: UnitOfWork, ref: LayerRef, sealed: Mapping[str, str]) -> dict[str, str]:
    tenant = uow.actor.tenant_id
    return {
        key: uow.secrets.open(value, secret_context(tenant, ref.scope, ref.name, key))
        for key, value in sealed.items()
    }


async def _write(
    runtime: Runtime, actor: Actor, ref: LayerRef, make: Make, write: Write
) -> ConfigChangeResult:
    actor.require(Role.OPERATOR)
    pending = None if write.dry_run else Pending()
    async with runtime.unit_of_work(actor) as uow:
        await _exists(uow, ref)
        current = await uow.config.latest(ref.scope, ref.name)
        version = current.version if current is not None else 0
        if write.expected_version is not None and write.expected_version != version:
            raise Conflict(
                f"{ref} is at config version {version}, not {write.expected_version}: someone "
                "changed it meanwhile; read it again and repeat your change",
                field="expected_version",
            )
        content, sealed = make(uow, current)
        check_size(content, _clear(uow, ref, sealed), write.field_root)
        changes = diff(content_of(current), content)
        if not changes and content.priority == content_of(current).priority:
            # Nothing to push: a new version would only fill the history with copies.
            return ConfigChangeResult(view_of(ref, current), [], 0, unchanged=True)
        row = await _signed_row(uow, ref, version + 1, content, sealed, write.message)
        reach = await _reach(uow, ref)
        affected = await refresh_layer(
            uow, reach, row, field_root=write.field_root, pending=pending
        )
        if pending is not None:
            await uow.config.add(row)
            _record(uow, ref, row, changes)
            await uow.commit()
    if pending is not None:
        announce_desired(runtime, pending)
    return ConfigChangeResult(view_of(ref, row), changes, affected)


async def _reach(uow: UnitOfWork, ref: LayerRef) -> list[str] | None:
    """The devices a layer reaches: all (None), a group's members, or the one device."""
    if ref.scope == "tenant":
        return None
    if ref.scope == "group":
        return await matching_ids(uow, DeviceFilter(group=ref.name))
    return [ref.name]


async def _signed_row(
    uow: UnitOfWork,
    ref: LayerRef,
    version: int,
    content: LayerContent,
    sealed: dict[str, str],
    message: str,
) -> ConfigLayer:
    """The new version, signed by the server key (refused where only operator keys count)."""
    state = await ensure_trust(uow)
    pair = _server_pair(await uow.signing.keys())
    if state.trust.operator_keys_only or pair is None:
        raise Conflict(OPERATOR_KEYS_ONLY)
    row = ConfigLayer(
        tenant_id=uow.actor.tenant_id,
        scope=ref.scope,
        name=ref.name,
        version=version,
        priority=content.priority,
        values=dict(content.values),
        secrets=sealed,
        secret_hashes=dict(content.secret_hashes),
        signatures=[],
        author=str(uow.actor),
        message=message,
        created_at=datetime.now(UTC),
    )
    row.signatures = [pair.sign(layer_payload(protocol_layer(row))).to_dict()]
    return row


def _record(uow: UnitOfWork, ref: LayerRef, row: ConfigLayer, changes: list[Change]) -> None:
    keys = [c.key for c in changes]
    what = ", ".join(f"{c.key} {c.change}" for c in changes) or "no key changed"
    uow.record(
        EventType.CONFIG_CHANGED,
        f"config {ref} version {row.version}: {what}",
        data={
            "scope": ref.scope,
            "name": ref.name,
            "version": row.version,
            "author": row.author,
            "keys": keys,
        },
    )
