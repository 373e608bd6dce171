"""remote access policy per tenant, cordoned devices

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tenant_policies") as batch:
        batch.add_column(
            sa.Column("remote_access", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("exec_allow", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("cordoned_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("cordoned_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("cordoned_by")
        batch.drop_column("cordoned_at")
    with op.batch_alter_table("tenant_policies") as batch:
        batch.drop_column("exec_allow")
        batch.drop_column("remote_access")
