"""Artifact uploads of a tenant, and the bundle versions that take them from the control plane."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signalbeam.server.db.models import Artifact, BundleArtifact, BundleVersion
from signalbeam.server.repositories.base import TenantRepository


class UploadExists(Exception):
    """A concurrent upload stored the same name and digest first; read it instead."""


class ArtifactRepository(TenantRepository):
    """Uploads (name, sha256) of one tenant and the references bundle versions hold to them."""

    async def add(self, artifact: Artifact) -> Artifact:
        artifact.tenant_id = self.tenant_id
        self.session.add(artifact)
        try:
            await self.session.flush()
        except IntegrityError as err:
            raise UploadExists(str(err)) from err
        return artifact

    async def get(self, name: str, sha256: str) -> Artifact | None:
        return await self.session.scalar(
            self._uploads().where(Artifact.name == name, Artifact.sha256 == sha256)
        )

    async def newest(self, name: str) -> Artifact | None:
        """The latest upload under `name`: what `{name: N}` in a bundle means."""
        query = self._uploads().where(Artifact.name == name)
        return await self.session.scalar(
            query.order_by(Artifact.created_at.desc(), Artifact.id.desc()).limit(1)
        )

    async def named(self, name: str) -> list[Artifact]:
        return list(await self.session.scalars(self._uploads().where(Artifact.name == name)))

    async def with_sha256(self, sha256: str, *, lock: bool = False) -> list[Artifact]:
        """Uploads of this digest; `lock` holds them (PostgreSQL) until the transaction ends."""
        query = self._uploads().where(Artifact.sha256 == sha256).order_by(Artifact.id)
        return list(await self.session.scalars(query.with_for_update() if lock else query))

    async def all(self) -> list[Artifact]:
        query = self._uploads().order_by(Artifact.name, Artifact.created_at.desc(), Artifact.id)
        return list(await self.session.scalars(query))

    async def remove(self, rows: Collection[Artifact]) -> None:
        """Delete these uploads now (in the transaction), so a racing push waits or fails."""
        ids = [row.id for row in rows]
        await self.session.execute(
            delete(Artifact).where(Artifact.tenant_id == self.tenant_id, Artifact.id.in_(ids))
        )

    async def add_references(self, bundle_version_id: int, shas: Collection[str]) -> None:
        for sha256 in sorted(set(shas)):
            self.session.add(
                BundleArtifact(
                    bundle_version_id=bundle_version_id, sha256=sha256, tenant_id=self.tenant_id
                )
            )
        await self.session.flush()

    async def referenced_by(self, shas: Collection[str] | None = None) -> dict[str, list[str]]:
        """sha256 -> `name@version` of every bundle version taking it from the control plane."""
        query = (
            select(BundleArtifact.sha256, BundleVersion.name, BundleVersion.version)
            .join(BundleVersion, BundleVersion.id == BundleArtifact.bundle_version_id)
            .where(BundleArtifact.tenant_id == self.tenant_id)
            .order_by(BundleVersion.name, BundleVersion.id)
        )
        if shas is not None:
            query = query.where(BundleArtifact.sha256.in_(list(shas)))
        found: dict[str, list[str]] = {}
        for sha256, name, version in await self.session.execute(query):
            found.setdefault(sha256, []).append(f"{name}@{version}")
        return found

    def _uploads(self) -> Select[Artifact]:
        return select(Artifact).where(Artifact.tenant_id == self.tenant_id)


async def blob_in_use(session: AsyncSession, sha256: str) -> bool:
    """True while any tenant keeps an upload of this digest.

    The one query here that crosses tenants: blobs are stored once per content, so only when
    no upload anywhere names a digest may its bytes go. It answers yes or no, nothing more.
    """
    return bool(await session.scalar(select(exists().where(Artifact.sha256 == sha256))))
