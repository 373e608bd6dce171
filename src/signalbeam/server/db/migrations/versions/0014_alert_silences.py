"""alert silences and maintenance windows that mute notifications

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("rule", sa.String(length=63), nullable=True),
        sa.Column("window", sa.Text(), nullable=True),
        sa.Column(
            "starts_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("ends_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column(
            "created_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alert_silences_tenant", "alert_silences", ["tenant_id", "ends_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alert_silences_tenant", table_name="alert_silences")
    op.drop_table("alert_silences")
