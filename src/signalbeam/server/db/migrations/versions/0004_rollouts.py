"""rollouts and the lease that elects one rollout engine among server processes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def _rollouts() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("bundle", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rollouts") as batch:
        batch.create_index("ix_rollouts_tenant_status", ["tenant_id", "status"], unique=False)
        batch.create_index("ix_rollouts_active", ["active"], unique=False)


def _worker_leases() -> None:
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("acquired_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def upgrade() -> None:
    _rollouts()
    _worker_leases()


def downgrade() -> None:
    op.drop_table("worker_leases")
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_index("ix_rollouts_active")
        batch.drop_index("ix_rollouts_tenant_status")
    op.drop_table("rollouts")
