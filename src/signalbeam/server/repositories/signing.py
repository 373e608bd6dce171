"""Signing keys, bundle signatures and the signing policy of one tenant."""

from __future__ import annotations

from sqlalchemy import select

from signalbeam.server.db.models import BundleSignature, SigningKey, TenantPolicy
from signalbeam.server.repositories.base import TenantRepository


class SigningRepository(TenantRepository):
    """Keys the tenant's devices trust, and who signed which bundle version."""

    async def keys(self) -> list[SigningKey]:
        query = (
            select(SigningKey)
            .where(SigningKey.tenant_id == self.tenant_id)
            .order_by(SigningKey.created_at, SigningKey.id)
        )
        return list(await self.session.scalars(query))

    async def key_named(self, name: str) -> SigningKey | None:
        return await self.session.scalar(
            select(SigningKey).where(
                SigningKey.tenant_id == self.tenant_id, SigningKey.name == name
            )
        )

    async def add_key(self, key: SigningKey) -> SigningKey:
        key.tenant_id = self.tenant_id
        self.session.add(key)
        await self.session.flush()
        return key

    async def policy(self, *, for_update: bool = False) -> TenantPolicy | None:
        query = select(TenantPolicy).where(TenantPolicy.tenant_id == self.tenant_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def add_policy(self, policy: TenantPolicy) -> TenantPolicy:
        policy.tenant_id = self.tenant_id
        self.session.add(policy)
        await self.session.flush()
        return policy

    async def signatures(self, bundle_version_id: int) -> list[BundleSignature]:
        query = (
            select(BundleSignature)
            .where(
                BundleSignature.tenant_id == self.tenant_id,
                BundleSignature.bundle_version_id == bundle_version_id,
            )
            .order_by(BundleSignature.id)
        )
        return list(await self.session.scalars(query))

    async def add_signature(self, signature: BundleSignature) -> BundleSignature:
        signature.tenant_id = self.tenant_id
        self.session.add(signature)
        await self.session.flush()
        return signature
