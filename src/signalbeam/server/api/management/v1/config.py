"""Config layers (tenant, groups, devices), their history, and devices' effective config.

The three layer paths share one set of operations, so they are registered by one function.
This module does without `from __future__ import annotations`: the operations are defined
inside that function, and FastAPI must see their parameter types as objects, not names.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from signalbeam.domain.config import Patch
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import config_schemas as s
from signalbeam.server.api.management.v1.field_rules import MAX_ID, GroupName, Offset
from signalbeam.server.services import config as config_service
from signalbeam.server.services import config_status
from signalbeam.server.services.config import LayerRef, LayerView, Write

router = APIRouter(tags=["config"])

DryRun = Annotated[
    bool, Query(description="only preview: the same answer, nothing written or pushed")
]
Limit = Annotated[int, Query(ge=1, le=1000)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="a version of this layer")]
FromVersion = Annotated[int, Query(alias="from", ge=0, le=MAX_ID, description="0: empty")]
ToVersion = Annotated[int, Query(ge=0, le=MAX_ID)]


def tenant_layer() -> LayerRef:
    return LayerRef("tenant", "")


def group_layer(group: GroupName) -> LayerRef:
    return LayerRef("group", group)


def device_layer(device_id: str) -> LayerRef:
    return LayerRef("device", device_id)


def layer_public(view: LayerView) -> s.ConfigLayerPublic:
    return s.ConfigLayerPublic(
        scope=view.scope,
        name=view.name,
        version=view.version,
        priority=view.priority,
        values=view.values,
        secrets=view.secrets,
        author=view.author,
        message=view.message,
        created_at=view.created_at,
    )


def change_public(result: config_service.ConfigChangeResult) -> s.ConfigChangePublic:
    return s.ConfigChangePublic(
        layer=layer_public(result.layer),
        changes=[s.ConfigChangeItem.of(c) for c in result.changes],
        affected_devices=result.affected_devices,
        unchanged=result.unchanged,
    )


def _patch_of(body: s.ConfigPatch) -> Patch:
    return Patch(
        set=body.set,
        unset=tuple(body.unset),
        secrets=body.secrets,
        priority=getattr(body, "priority", None),
    )


def add_layer_routes(
    path: str,
    which: Callable[..., LayerRef],
    patch_body: type[s.ConfigPatch],
    put_body: type[s.ConfigPut],
) -> None:
    """GET, PATCH, PUT, history, versions, diff and rollback of one kind of layer."""
    Ref = Annotated[LayerRef, Depends(which)]  # noqa: N806 - a type alias, local to a scope
    scope = path.split("/")[2]

    @router.get(path, response_model=s.ConfigLayerPublic, name=f"get_{scope}_config")
    async def get(ref: Ref, runtime: RuntimeDep, actor: CurrentActor) -> s.ConfigLayerPublic:
        """The layer's current version: values, and its secrets by name only."""
        return layer_public(await config_service.get_layer(runtime, actor, ref))

    async def patch(
        ref: Ref,
        body: s.ConfigPatch,
        runtime: RuntimeDep,
        actor: CurrentActor,
        dry_run: DryRun = False,
    ) -> s.ConfigChangePublic:
        """Set, unset and set secrets: a new version, pushed to the devices it reaches."""
        write = Write(body.message, body.expected_version, dry_run, "set")
        result = await config_service.patch(runtime, actor, ref, _patch_of(body), write)
        return change_public(result)

    async def put(
        ref: Ref,
        body: s.ConfigPut,
        runtime: RuntimeDep,
        actor: CurrentActor,
        dry_run: DryRun = False,
    ) -> s.ConfigChangePublic:
        """Replace the non-secret values (secrets kept): a new version."""
        write = Write(body.message, body.expected_version, dry_run, "values")
        priority = getattr(body, "priority", None)
        result = await config_service.put(runtime, actor, ref, body.values, priority, write)
        return change_public(result)

    @router.get(
        f"{path}/history", response_model=s.ConfigHistoryPage, name=f"{scope}_config_history"
    )
    async def history(
        ref: Ref, runtime: RuntimeDep, actor: CurrentActor, limit: Limit = 50, offset: Offset = 0
    ) -> s.ConfigHistoryPage:
        """Versions newest first, each with what it changed."""
        entries, total = await config_service.history(runtime, actor, ref, limit, offset)
        items = [
            s.ConfigHistoryItem(
                version=e.version,
                author=e.author,
                message=e.message,
                created_at=e.created_at,
                changes=[s.ConfigChangeItem.of(c) for c in e.changes],
            )
            for e in entries
        ]
        return s.ConfigHistoryPage(items=items, total=total)

    @router.get(
        f"{path}/versions/{{version}}",
        response_model=s.ConfigLayerPublic,
        name=f"{scope}_config_version",
    )
    async def version(
        ref: Ref, version: VersionNumber, runtime: RuntimeDep, actor: CurrentActor
    ) -> s.ConfigLayerPublic:
        """One version of the layer."""
        return layer_public(await config_service.get_version(runtime, actor, ref, version))

    @router.get(f"{path}/diff", response_model=s.ConfigDiffPublic, name=f"{scope}_config_diff")
    async def diff(
        ref: Ref, old: FromVersion, to: ToVersion, runtime: RuntimeDep, actor: CurrentActor
    ) -> s.ConfigDiffPublic:
        """What changed between two versions (secrets: only that they changed)."""
        changes = await config_service.diff_versions(runtime, actor, ref, old, to)
        return s.ConfigDiffPublic.model_validate(
            {"from": old, "to": to, "changes": [s.ConfigChangeItem.of(c) for c in changes]}
        )

    @router.post(
        f"{path}/rollback", response_model=s.ConfigChangePublic, name=f"rollback_{scope}_config"
    )
    async def rollback(
        ref: Ref,
        body: s.ConfigRollback,
        runtime: RuntimeDep,
        actor: CurrentActor,
        dry_run: DryRun = False,
    ) -> s.ConfigChangePublic:
        """A new version with an earlier version's values and secrets."""
        write = Write(body.message, body.expected_version, dry_run, "to")
        result = await config_service.rollback(runtime, actor, ref, body.to, write)
        return change_public(result)

    # Each kind of layer takes its own body (only groups have a priority): FastAPI reads the
    # body type from the annotation, so it is set before the operation is registered.
    patch.__annotations__["body"] = patch_body
    put.__annotations__["body"] = put_body
    router.patch(path, response_model=s.ConfigChangePublic, name=f"patch_{scope}_config")(patch)
    router.put(path, response_model=s.ConfigChangePublic, name=f"put_{scope}_config")(put)
    _registered: list[Any] = [get, history, version, diff, rollback]
    del _registered


add_layer_routes("/config/tenant", tenant_layer, s.ConfigPatch, s.ConfigPut)
add_layer_routes("/config/groups/{group}", group_layer, s.GroupConfigPatch, s.GroupConfigPut)
add_layer_routes("/config/devices/{device_id}", device_layer, s.ConfigPatch, s.ConfigPut)


@router.get("/devices/{device_id}/config", response_model=s.DeviceConfigPublic)
async def device_config(
    device_id: str, runtime: RuntimeDep, actor: CurrentActor
) -> s.DeviceConfigPublic:
    """The device's effective config, where each value came from, and whether it applied it."""
    found = await config_status.device_config(runtime, actor, device_id)
    items = [
        s.ConfigItemPublic(
            key=item.key,
            value=item.value,
            secret=item.secret,
            source=s.ConfigSourcePublic(
                scope=item.source.scope, name=item.source.name, version=item.source.version
            ),
            origin=item.origin,
        )
        for item in found.items
    ]
    status = s.ConfigStatusPublic(
        state=found.status.state,
        reason=found.status.reason,
        applied_digest=found.status.applied_digest,
    )
    return s.DeviceConfigPublic(
        device_id=found.device_id, digest=found.digest, items=items, status=status
    )


@router.get("/groups/{group}/config/status", response_model=s.GroupConfigStatusPublic)
async def group_config_status(
    group: GroupName, runtime: RuntimeDep, actor: CurrentActor
) -> s.GroupConfigStatusPublic:
    """How many of the group's devices applied their config, wait for it, failed, or have none."""
    return s.GroupConfigStatusPublic(**await config_status.group_status(runtime, actor, group))
