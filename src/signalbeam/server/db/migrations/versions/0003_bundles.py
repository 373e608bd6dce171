"""bundles, bundle versions, and the bundle a device should run and runs

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def _bundles() -> None:
    op.create_table(
        "bundles",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )


def _bundle_versions() -> None:
    op.create_table(
        "bundle_versions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("bundle_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("major", sa.BigInteger(), nullable=False),
        sa.Column("minor", sa.BigInteger(), nullable=False),
        sa.Column("patch", sa.BigInteger(), nullable=False),
        sa.Column("is_release", sa.Boolean(), nullable=False),
        sa.Column("prerelease", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["bundle_id"], ["bundles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", "version"),
    )
    with op.batch_alter_table("bundle_versions") as batch:
        batch.create_index(batch.f("ix_bundle_versions_bundle_id"), ["bundle_id"], unique=False)
        batch.create_index(
            "ix_bundle_versions_precedence",
            ["tenant_id", "name", "major", "minor", "patch", "is_release"],
            unique=False,
        )


def _device_columns() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("desired_bundle", sa.String(length=63), nullable=True))
        batch.add_column(sa.Column("desired_version", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reported_bundle", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reported_version", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("reported_status", sa.String(length=32), nullable=True))
        batch.create_index(
            "ix_devices_tenant_desired", ["tenant_id", "desired_bundle", "desired_version"]
        )
        batch.create_index(
            "ix_devices_tenant_reported", ["tenant_id", "reported_bundle", "reported_version"]
        )
        batch.create_index("ix_devices_tenant_reported_status", ["tenant_id", "reported_status"])


def upgrade() -> None:
    _bundles()
    _bundle_versions()
    _device_columns()


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_tenant_reported_status")
        batch.drop_index("ix_devices_tenant_reported")
        batch.drop_index("ix_devices_tenant_desired")
        batch.drop_column("reported_status")
        batch.drop_column("reported_version")
        batch.drop_column("reported_bundle")
        batch.drop_column("desired_version")
        batch.drop_column("desired_bundle")
    with op.batch_alter_table("bundle_versions") as batch:
        batch.drop_index("ix_bundle_versions_precedence")
        batch.drop_index(batch.f("ix_bundle_versions_bundle_id"))
    op.drop_table("bundle_versions")
    op.drop_table("bundles")
