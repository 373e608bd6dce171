"""artifacts uploaded to the control plane, and the bundle versions that use them

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "tenant_id", BIG_ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", "sha256"),
    )
    op.create_index("ix_artifacts_tenant_sha256", "artifacts", ["tenant_id", "sha256"])
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_table(
        "bundle_artifacts",
        sa.Column(
            "bundle_version_id",
            BIG_ID,
            sa.ForeignKey("bundle_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column(
            "tenant_id", BIG_ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
    )
    op.create_index(
        "ix_bundle_artifacts_tenant_sha256", "bundle_artifacts", ["tenant_id", "sha256"]
    )


def downgrade() -> None:
    op.drop_index("ix_bundle_artifacts_tenant_sha256", "bundle_artifacts")
    op.drop_table("bundle_artifacts")
    op.drop_index("ix_artifacts_sha256", "artifacts")
    op.drop_index("ix_artifacts_tenant_sha256", "artifacts")
    op.drop_table("artifacts")
