"""Rewriting the config section of devices that run a bundle, when what reaches them changes.

Two things change which config a device should have: a new layer version (every device the
layer reaches), and a device joining or leaving a group (a label change that moves it across
a dynamic group, a static membership edit). Both rewrite the desired state of the affected
bundle-running devices in the caller's transaction, one section per distinct layer set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from signalbeam.server.db.models import ConfigLayer
from signalbeam.server.services.config_delivery import (
    build_section,
    check_schema,
    group_by_document,
    is_bundle,
    layer_key,
    load_layers,
)
from signalbeam.server.services.context import UnitOfWork
from signalbeam.server.services.desired import Pending, write_exact


def _with_section(
    uow: UnitOfWork, desired: dict[str, Any], rows: Sequence[ConfigLayer]
) -> dict[str, Any]:
    bare = {k: v for k, v in desired.items() if k != "config"}
    if not rows:
        return bare
    return {**bare, "config": build_section(uow.secrets, uow.actor.tenant_id, rows)}


async def refresh_layer(
    uow: UnitOfWork,
    device_ids: Sequence[str] | None,
    layer: ConfigLayer,
    *,
    field_root: str,
    pending: Pending | None,
) -> int:
    """Give the devices a new layer version reaches (all live ones, when None) their new config.

    Refuses (422) when a device's bundle schema refuses the result, before anything is
    written; with `pending` None (a dry run) it only checks. Returns how many devices get the
    new config: those running a bundle, as config travels in a bundle's desired state.
    """
    rows = await uow.config.devices(device_ids)
    layers = await load_layers(
        uow, None if device_ids is None else [r.device_id for r in rows], layer
    )
    groups = group_by_document(rows, layers)
    for layer_rows, desired, ids in groups.values():
        check_schema(desired, layer_rows, sorted(ids)[0], field_root)
    if pending is not None:
        summary = f"desired state: config {_describe(layer)} version {layer.version}"
        for layer_rows, desired, ids in groups.values():
            await write_exact(uow, ids, _with_section(uow, desired, layer_rows), summary, pending)
    return sum(len(ids) for _, _, ids in groups.values())


async def resync_devices(uow: UnitOfWork, device_ids: Sequence[str], pending: Pending) -> None:
    """After devices changed groups: rewrite those whose set of layers is no longer the same."""
    if not device_ids:
        return
    rows = await uow.config.devices(device_ids)
    layers = await load_layers(uow, list(device_ids))
    for layer_rows, desired, ids in group_by_document(rows, layers).values():
        if _stored_key(desired) == layer_key(layer_rows):
            continue
        summary = "desired state: config follows the device's groups"
        await write_exact(uow, ids, _with_section(uow, desired, layer_rows), summary, pending)


def _stored_key(desired: dict[str, Any]) -> tuple[tuple[str, str, int], ...]:
    section = desired.get("config") if is_bundle(desired) else None
    layers = section.get("layers") if isinstance(section, dict) else None
    return (
        tuple(
            sorted(
                (str(x.get("scope")), str(x.get("name")), int(x.get("version", 0))) for x in layers
            )
        )
        if isinstance(layers, list)
        else ()
    )


def _describe(layer: ConfigLayer) -> str:
    return "tenant" if layer.scope == "tenant" else f"{layer.scope} {layer.name}"
