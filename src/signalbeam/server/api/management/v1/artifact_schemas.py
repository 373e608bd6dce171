"""Management API v1 bodies for artifacts, and how a stored upload becomes one."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from signalbeam.server.db.models import Artifact
from signalbeam.server.services.artifacts import ArtifactSummary


class ArtifactPublic(BaseModel):
    name: str
    sha256: str = Field(description="hex digest of the bytes; what bundles pin")
    size: int = Field(description="bytes")
    created_at: datetime
    created_by: str
    bundle_versions: int = Field(description="bundle versions that take this blob from here")
    used_by: list[str] = Field(description="those bundle versions, as name@version")


class ArtifactUploaded(ArtifactPublic):
    created: bool = Field(description="false when this name already had exactly these bytes")


class ArtifactsRemoved(BaseModel):
    removed: list[ArtifactPublic]


def artifact(row: Artifact, used_by: list[str] | None = None) -> ArtifactPublic:
    """The public form of one upload."""
    used = used_by or []
    return ArtifactPublic(
        name=row.name,
        sha256=row.sha256,
        size=row.size,
        created_at=row.created_at,
        created_by=row.created_by,
        bundle_versions=len(used),
        used_by=used,
    )


def summary(item: ArtifactSummary) -> ArtifactPublic:
    """An upload listed with the bundle versions using it."""
    return artifact(item.artifact, item.used_by)
