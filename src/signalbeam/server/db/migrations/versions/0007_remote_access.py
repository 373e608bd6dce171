"""remote access policy per tenant

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant_policies") as batch:
        batch.add_column(
            sa.Column("remote_access", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("exec_allow", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tenant_policies") as batch:
        batch.drop_column("exec_allow")
        batch.drop_column("remote_access")
