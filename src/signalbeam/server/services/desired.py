"""Desired state: what each device should run, versioned by a per-device generation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from signalbeam.domain.errors import NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.spec_rules import NAME_PATTERN
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.config_delivery import with_config
from signalbeam.server.services.config_sealing import seal_document
from signalbeam.server.services.context import Actor, UnitOfWork


def bundle_of(spec: dict[str, Any]) -> tuple[str | None, str | None]:
    """The bundle name and version a desired-state document names, if it is a bundle document."""
    bundle = spec.get("bundle") if spec.get("kind") == "bundle" else None
    if not isinstance(bundle, dict):
        return None, None
    name, version = bundle.get("name"), bundle.get("version")
    # The raw endpoint takes any document; only a well-formed reference fills the columns.
    if isinstance(name, str) and isinstance(version, str) and re.fullmatch(NAME_PATTERN, name):
        return name, version[:200]
    return None, None


@dataclass
class Pending:
    """Devices whose desired state changed in a transaction, to announce once it commits."""

    generations: dict[int, int] = field(default_factory=dict)  # device pk -> generation
    specs: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, changed: Sequence[tuple[int, str, int]], spec: dict[str, Any]) -> None:
        for pk, _, generation in changed:
            self.generations[pk], self.specs[pk] = generation, spec


async def set_desired(
    runtime: Runtime, actor: Actor, device_ids: Sequence[str], spec: dict[str, Any], summary: str
) -> dict[str, int]:
    """Give devices a new desired state (new generation each) and wake their watchers.

    Returns each device's new generation. `summary` is the human line for the activity log,
    e.g. "desired state: warehouse-monitor@1.2.0". A bundle document gains each device's
    config, and is refused (422) where that config breaks the bundle's config schema.
    """
    actor.require(Role.OPERATOR)
    wanted = list(dict.fromkeys(device_ids))
    pending = Pending()
    async with runtime.unit_of_work(actor) as uow:
        changed = await write_desired(uow, wanted, spec, summary, pending, strict=True)
        missing = sorted(set(wanted) - {device_id for _, device_id, _ in changed})
        if missing:
            raise NotFound(f"no such devices in this tenant: {', '.join(missing)}", field="devices")
        await uow.commit()
    announce_desired(runtime, pending)
    return {device_id: generation for _, device_id, generation in changed}


async def write_desired(
    uow: UnitOfWork,
    device_ids: Sequence[str],
    spec: dict[str, Any],
    summary: str,
    pending: Pending,
    *,
    strict: bool = False,
) -> list[tuple[int, str, int]]:
    """Give devices a new desired state inside `uow`, noting each in `pending`.

    A bundle document gains each device's config section (config_delivery.py), so a device
    never loses its config when its bundle changes; with `strict`, a config its bundle's
    schema refuses refuses the write. Returns (pk, device_id, new generation) of the devices
    found. For callers that change desired state in the same transaction as their own rows
    (the rollout engine), too; all call `announce_desired` once the transaction is committed.
    """
    changed: list[tuple[int, str, int]] = []
    for ids, full in await with_config(uow, device_ids, spec, strict=strict):
        changed += await write_exact(uow, ids, full, summary, pending)
    return changed


async def write_exact(
    uow: UnitOfWork,
    device_ids: Sequence[str],
    spec: dict[str, Any],
    summary: str,
    pending: Pending,
) -> list[tuple[int, str, int]]:
    """Store exactly `spec` (its config secrets sealed) as these devices' desired state:
    one statement per chunk, one event row each."""
    bundle, version = bundle_of(spec)
    named = {"bundle": bundle, "version": version} if bundle else {}
    stored = seal_document(uow.secrets, uow.actor.tenant_id, spec)
    changed = await uow.devices.advance_desired(device_ids, stored, bundle, version)
    await uow.record_devices(
        EventType.DEVICE_DESIRED_STATE_CHANGED,
        [
            (
                pk,
                device_id,
                f"{summary} (generation {generation})",
                {"generation": generation, **named},
            )
            for pk, device_id, generation in changed
        ],
    )
    pending.add(changed, spec)
    return changed


def announce_desired(runtime: Runtime, pending: Pending) -> None:
    """After commit: drop cached copies of the devices and wake agents watching them."""
    runtime.devices.evict(*pending.generations)
    runtime.watchers.notify(pending.generations, pending.specs)
