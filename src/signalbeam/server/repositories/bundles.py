"""Bundles, their immutable versions, and how many devices desire or run each."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from signalbeam.server.db.models import Bundle, BundleVersion, Device
from signalbeam.server.repositories.base import TenantRepository

# (bundle, version) -> devices; version None counts every version of the bundle.
DeviceCounts = Counter[tuple[str, str | None]]


class AlreadyStored(Exception):
    """A concurrent push stored the same bundle or version first; read it and decide again."""


class BundleRepository(TenantRepository):
    """Bundles and bundle versions of one tenant."""

    async def get(self, name: str) -> Bundle | None:
        return await self.session.scalar(
            select(Bundle).where(Bundle.tenant_id == self.tenant_id, Bundle.name == name)
        )

    async def all(self) -> list[Bundle]:
        query = select(Bundle).where(Bundle.tenant_id == self.tenant_id).order_by(Bundle.name)
        return list(await self.session.scalars(query))

    async def add(self, bundle: Bundle) -> Bundle:
        bundle.tenant_id = self.tenant_id
        await self._insert(bundle)
        return bundle

    async def add_version(self, version: BundleVersion) -> BundleVersion:
        version.tenant_id = self.tenant_id
        await self._insert(version)
        return version

    async def _insert(self, row: Bundle | BundleVersion) -> None:
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as err:
            raise AlreadyStored(str(err)) from err

    def _versions(self, name: str) -> Select[BundleVersion]:
        return select(BundleVersion).where(
            BundleVersion.tenant_id == self.tenant_id, BundleVersion.name == name
        )

    async def version(self, name: str, version: str) -> BundleVersion | None:
        return await self.session.scalar(
            self._versions(name).where(BundleVersion.version == version)
        )

    async def versions(self, name: str) -> list[BundleVersion]:
        """Every version of a bundle, in no particular order (semver sorts them)."""
        return list(await self.session.scalars(self._versions(name)))

    async def highest(self, name: str) -> list[BundleVersion]:
        """The versions sharing the highest major.minor.patch (releases first if any).

        SQL orders by the numbers; only pre-release identifiers, rare, are left to the caller.
        """
        top = await self.session.scalar(
            self._versions(name)
            .order_by(
                BundleVersion.major.desc(),
                BundleVersion.minor.desc(),
                BundleVersion.patch.desc(),
                BundleVersion.is_release.desc(),
            )
            .limit(1)
        )
        if top is None:
            return []
        same = self._versions(name).where(
            BundleVersion.major == top.major,
            BundleVersion.minor == top.minor,
            BundleVersion.patch == top.patch,
            BundleVersion.is_release == top.is_release,
        )
        return list(await self.session.scalars(same))

    async def version_index(self) -> list[tuple[str, str, datetime]]:
        """(name, version, pushed at) of every version of the tenant, for the bundle list."""
        query = select(BundleVersion.name, BundleVersion.version, BundleVersion.created_at).where(
            BundleVersion.tenant_id == self.tenant_id
        )
        return [(name, version, at) for name, version, at in (await self.session.execute(query))]

    async def running_counts(self, name: str | None = None) -> DeviceCounts:
        """Live devices by the bundle and version they report running now."""
        return await self._counts(Device.reported_bundle, Device.reported_version, name)

    async def desired_counts(self, name: str | None = None) -> DeviceCounts:
        """Live devices by the bundle and version they should run."""
        return await self._counts(Device.desired_bundle, Device.desired_version, name)

    async def _counts(
        self,
        bundle: InstrumentedAttribute[str | None],
        version: InstrumentedAttribute[str | None],
        name: str | None,
    ) -> DeviceCounts:
        query = (
            select(bundle, version, func.count())
            .where(
                Device.tenant_id == self.tenant_id,
                Device.decommissioned_at.is_(None),
                bundle.is_not(None) if name is None else bundle == name,
            )
            .group_by(bundle, version)
        )
        counts: DeviceCounts = Counter()
        for row_bundle, row_version, count in (await self.session.execute(query)).all():
            assert row_bundle is not None  # the query filters on it
            counts[(row_bundle, row_version)] += count
            counts[(row_bundle, None)] += count
        return counts
