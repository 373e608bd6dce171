"""Artifacts: upload blobs (streamed, never held in memory), list them, remove unused ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from signalbeam.domain.artifacts import (
    ARTIFACT_NAME_PATTERN,
    DIGEST_PATTERN,
    REF_PATTERN,
    check_name,
    check_sha256,
)
from signalbeam.domain.model import Role
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import artifact_schemas as schemas
from signalbeam.server.artifacts.store import BlobTooLarge
from signalbeam.server.services import artifacts as artifact_service

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The artifact's bytes, as they are (a binary, tarball, zip, model...).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
ExpectedDigest = Annotated[
    str | None,
    Header(
        alias="X-Sha256",
        json_schema_extra={"pattern": DIGEST_PATTERN},
        description="the sha256 the bytes must have; a mismatch stores nothing",
    ),
]


# The same path as an upload's (`/artifacts/{name}`, one resource), naming an upload or a digest.
RemovalRef = Annotated[
    str,
    Path(
        json_schema_extra={"pattern": REF_PATTERN},
        description="an upload's name, or a sha256 (removes every name)",
    ),
]


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"the artifact is larger than this server accepts ({limit} bytes); raise "
        "SIGNALBEAM_ARTIFACT_MAX_BYTES on the server, or upload a smaller file",
    )


def _refuse_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


@router.put(
    "/{name}",
    response_model=schemas.ArtifactUploaded,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses={200: {"description": "this name already held exactly these bytes"}},
)
async def upload(
    # `check_name` enforces it, saying which characters a name may hold.
    name: Annotated[str, Path(json_schema_extra={"pattern": ARTIFACT_NAME_PATTERN})],
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    actor: CurrentActor,
    expected: ExpectedDigest = None,
) -> schemas.ArtifactUploaded:
    """Upload the raw body as artifact `name`; answers its sha256 and size (201, or 200 if known)."""
    # Everything that can be refused is refused before a possibly huge body is read.
    actor.require(Role.OPERATOR)
    check_name(name)
    if expected is not None:
        check_sha256(expected, field="X-Sha256")
    limit = runtime.settings.artifact_max_bytes
    _refuse_declared_size(request, limit)
    try:
        done = await artifact_service.upload(runtime, actor, name, request.stream(), expected)
    except BlobTooLarge as err:
        raise _too_large(limit) from err
    except ClientDisconnect as err:
        raise HTTPException(
            400, "the upload was cut off before the end; nothing was stored"
        ) from err
    if not done.created:
        response.status_code = 200
    return schemas.ArtifactUploaded(
        **schemas.artifact(done.artifact).model_dump(), created=done.created
    )


@router.get("", response_model=list[schemas.ArtifactPublic])
async def list_artifacts(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.ArtifactPublic]:
    """Uploads of your tenant by name, newest first, with the bundle versions that use each."""
    return [schemas.summary(item) for item in await artifact_service.list_artifacts(runtime, actor)]


@router.delete("/{name}", response_model=schemas.ArtifactsRemoved)
async def remove(
    name: RemovalRef, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.ArtifactsRemoved:
    """Remove every upload with this name (or sha256); refused (409) while a bundle version uses it."""
    removed = await artifact_service.remove(runtime, actor, name)
    return schemas.ArtifactsRemoved(removed=[schemas.artifact(row) for row in removed.artifacts])
