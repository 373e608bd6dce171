"""signing keys, bundle signatures, and the tenant's signing policy

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "tenant_id", BIG_ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("key_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(200), nullable=False),
        sa.Column("private_key", sa.String(200), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("tenant_id", "key_id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    op.create_table(
        "bundle_signatures",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "tenant_id", BIG_ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "bundle_version_id",
            BIG_ID,
            sa.ForeignKey("bundle_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_id", sa.String(80), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("bundle_version_id", "key_id"),
    )
    op.create_index(
        "ix_bundle_signatures_bundle_version_id", "bundle_signatures", ["bundle_version_id"]
    )
    op.create_table(
        "tenant_policies",
        sa.Column(
            "tenant_id",
            BIG_ID,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("operator_keys_only", sa.Boolean(), nullable=False),
        sa.Column("trust_version", sa.BigInteger(), nullable=False),
        sa.Column("trust_signatures", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_policies")
    op.drop_index("ix_bundle_signatures_bundle_version_id", "bundle_signatures")
    op.drop_table("bundle_signatures")
    op.drop_table("signing_keys")
