"""Artifact use cases: upload a blob under a name, list, remove unless used, serve to devices.

Blobs are stored once per content (sha256) however many tenants or names upload them; a row
per (tenant, name, sha256) says who may use which. A blob's bytes go only when no row of any
tenant names its digest any more.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from signalbeam.domain.artifacts import check_name, check_sha256, is_sha256
from signalbeam.domain.errors import Conflict, InvalidInput, NotFound
from signalbeam.domain.model import EventType, Role
from signalbeam.protocol.bundle_v1 import BundleSpec
from signalbeam.server.artifacts.store import BlobMissing, DigestMismatch
from signalbeam.server.db.models import Artifact, BundleVersion
from signalbeam.server.repositories.artifacts import ArtifactRepository, UploadExists, blob_in_use
from signalbeam.server.runtime import Runtime
from signalbeam.server.services.context import Actor, UnitOfWork
from signalbeam.server.services.device_cache import DevicePrincipal

PUSH_HINT = "upload it with signalbeam artifacts push"

# One lock per digest in this process: an upload that stored a blob and a removal deciding
# to delete the same blob take turns, so the bytes never vanish under a new upload row.
_blob_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _blob_lock(sha256: str) -> asyncio.Lock:
    lock = _blob_locks.get(sha256)
    if lock is None:
        lock = _blob_locks[sha256] = asyncio.Lock()
    return lock


def short(sha256: str) -> str:
    """`0123456789ab…`: enough of a digest to tell blobs apart in messages."""
    return sha256[:12] + "…"


@dataclass(frozen=True)
class Uploaded:
    """The upload row, and whether this request created it (False: same name and bytes again)."""

    artifact: Artifact
    created: bool


@dataclass(frozen=True)
class ArtifactSummary:
    """An upload and the bundle versions (`name@version`) that take its blob from here."""

    artifact: Artifact
    used_by: list[str]


@dataclass(frozen=True)
class Removed:
    """The uploads a removal deleted."""

    artifacts: list[Artifact]


def _repository(uow: UnitOfWork) -> ArtifactRepository:
    return ArtifactRepository(uow.session, uow.actor.tenant_id)


async def upload(
    runtime: Runtime,
    actor: Actor,
    name: str,
    chunks: AsyncIterable[bytes],
    expected: str | None = None,
) -> Uploaded:
    """Stream a blob into the store and record it under `name` for the actor's tenant."""
    actor.require(Role.OPERATOR)
    check_name(name)
    wanted = None if expected is None else check_sha256(expected, field="X-Sha256")
    try:
        stored = await runtime.artifacts.put(chunks, runtime.settings.artifact_max_bytes, wanted)
    except DigestMismatch as err:
        raise InvalidInput(
            f"X-Sha256: the uploaded bytes hash to {err.actual}, not {err.expected}; the file "
            "changed or was damaged on the way, so nothing was stored: upload it again",
            field="X-Sha256",
        ) from err
    async with _blob_lock(stored.sha256):
        if not await runtime.artifacts.exists(stored.sha256):
            raise Conflict(
                f"artifact {name} was removed by someone else while it uploaded; upload it again",
                field="name",
            )
        try:
            return await _record_upload(runtime, actor, name, stored.sha256, stored.size)
        except BaseException:
            await _discard_unused(runtime, stored.sha256)
            raise


async def _record_upload(
    runtime: Runtime, actor: Actor, name: str, sha256: str, size: int
) -> Uploaded:
    for _ in range(2):  # a concurrent identical upload may win the insert; then read its row
        async with runtime.unit_of_work(actor) as uow:
            repository = _repository(uow)
            existing = await repository.get(name, sha256)
            if existing is not None:
                return Uploaded(existing, created=False)
            row = Artifact(
                name=name,
                sha256=sha256,
                size=size,
                created_at=datetime.now(UTC),
                created_by=str(actor),
            )
            try:
                await repository.add(row)
            except UploadExists:
                continue
            uow.record(
                EventType.ARTIFACT_PUSHED,
                f"artifact {name} uploaded ({short(sha256)}, {size} bytes)",
                data={"name": name, "sha256": sha256, "size": size},
            )
            await uow.commit()
            return Uploaded(row, created=True)
    raise Conflict(f"artifact {name} is being uploaded concurrently; try again", field="name")


async def list_artifacts(runtime: Runtime, actor: Actor) -> list[ArtifactSummary]:
    """Every upload of the tenant, by name then newest first, with the versions using each."""
    async with runtime.unit_of_work(actor) as uow:
        repository = _repository(uow)
        rows = await repository.all()
        used = await repository.referenced_by()
    return [ArtifactSummary(row, used.get(row.sha256, [])) for row in rows]


async def remove(runtime: Runtime, actor: Actor, ref: str) -> Removed:
    """Delete every upload named `ref` (or with digest `ref`) unless a bundle version uses it."""
    actor.require(Role.OPERATOR)
    digest = ref.removeprefix("sha256:").lower()
    by_digest = is_sha256(digest)
    async with runtime.unit_of_work(actor) as uow:
        repository = _repository(uow)
        if by_digest:
            rows = await repository.with_sha256(digest, lock=True)
        else:
            rows = await repository.named(check_name(ref))
        if not rows:
            raise NotFound(
                f"no artifact {ref} in this tenant; list them with `signalbeam artifacts ls`",
                field="sha256" if by_digest else "name",
            )
        # Deleting first holds these rows, so a bundle push racing this removal either
        # commits its reference before the check below sees it, or finds the rows gone.
        await repository.remove(rows)
        gone = {row.sha256 for row in rows}
        gone -= {sha for sha in gone if await repository.with_sha256(sha)}  # other names keep it
        used = await repository.referenced_by(gone)
        if used:
            raise Conflict(_in_use(ref, used), field="sha256" if by_digest else "name")
        for row in rows:
            uow.record(
                EventType.ARTIFACT_REMOVED,
                f"artifact {row.name} removed ({short(row.sha256)})",
                data={"name": row.name, "sha256": row.sha256},
            )
        await uow.commit()
    for sha256 in gone:
        async with _blob_lock(sha256):
            await _discard_unused(runtime, sha256)
    return Removed(rows)


def _in_use(ref: str, used: Mapping[str, list[str]]) -> str:
    versions = sorted({version for refs in used.values() for version in refs})
    shown = ", ".join(versions[:10]) + (
        f" and {len(versions) - 10} more" if len(versions) > 10 else ""
    )
    return (
        f"artifact {ref} is used by bundle version{'s' if len(versions) > 1 else ''} {shown}; "
        "devices may need it to install or roll back to them, so it stays while they exist"
    )


async def _discard_unused(runtime: Runtime, sha256: str) -> None:
    """Delete the blob's bytes unless an upload of any tenant still names them."""
    async with runtime.sessions() as session:
        if await blob_in_use(session, sha256):
            return
    await runtime.artifacts.delete(sha256)


async def device_blob(runtime: Runtime, device: DevicePrincipal, sha256: str) -> int:
    """The size of a blob this device's tenant uploaded; NotFound for anything else."""
    async with runtime.sessions() as session:
        uploads = await ArtifactRepository(session, device.tenant_id).with_sha256(sha256)
    if not uploads:
        raise NotFound(
            f"no artifact with sha256 {sha256[:64]} in this device's tenant; "
            "upload it with `signalbeam artifacts push` and push the bundle again",
            field="sha256",
        )
    try:
        return await runtime.artifacts.size(sha256)
    except BlobMissing as err:
        raise NotFound(
            f"artifact {short(sha256)} is recorded but its bytes are missing from the server's "
            "store; an operator must upload it again",
            field="sha256",
        ) from err


async def pin_artifacts(runtime: Runtime, actor: Actor, document: Any) -> Any:
    """The pushed document with every artifact taken from here pinned to its sha256.

    `{name: N}` becomes the newest upload named N; `{sha256: S}` must be an upload of this
    tenant. Artifacts with a `url` are left alone. Shapes that are wrong in other ways are
    left for the bundle parser to report, with their paths.
    """
    apps = document.get("apps") if isinstance(document, Mapping) else None
    if not isinstance(apps, list):
        return document
    async with runtime.unit_of_work(actor) as uow:
        repository = _repository(uow)
        pinned = [await _pin_app(repository, index, app) for index, app in enumerate(apps)]
    return {**document, "apps": pinned}


async def _pin_app(repository: ArtifactRepository, index: int, app: Any) -> Any:
    artifact = app.get("artifact") if isinstance(app, Mapping) else None
    if not isinstance(artifact, Mapping) or artifact.get("url") is not None:
        return app
    path = f"apps[{index}].artifact"
    name, sha256 = artifact.get("name"), artifact.get("sha256")
    if isinstance(sha256, str) and is_sha256(sha256):
        uploads = await repository.with_sha256(sha256)
        if not any(name in (None, row.name) for row in uploads):
            named = f" named {name}" if isinstance(name, str) else ""
            raise InvalidInput(
                f"{path}.sha256: no artifact{named} with sha256 {sha256}; {PUSH_HINT}",
                field=f"{path}.sha256",
            )
        return app
    if sha256 is None and isinstance(name, str):
        newest = await repository.newest(name)
        if newest is None:
            raise InvalidInput(
                f"{path}.name: no artifact named {name}; {PUSH_HINT}", field=f"{path}.name"
            )
        return {**app, "artifact": {**artifact, "sha256": newest.sha256}}
    return app


async def record_references(uow: UnitOfWork, version: BundleVersion, spec: BundleSpec) -> None:
    """Note which uploaded blobs a new bundle version takes from here, so they are kept."""
    shas = {app.artifact.sha256 for app in spec.apps if app.artifact.url is None}
    if not shas:
        return
    repository = _repository(uow)
    for sha256 in sorted(shas):
        # Locking the uploads makes a concurrent removal wait for this push, then refuse.
        if not await repository.with_sha256(sha256, lock=True):
            raise Conflict(
                f"artifact {short(sha256)} was removed while {spec.ref} was pushed; "
                f"{PUSH_HINT} and push the bundle again",
                field="apps",
            )
    await repository.add_references(version.id, shas)
