"""boot id per device, and the reboot an operator asked for until it is confirmed

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_DATETIME = signalbeam.server.db.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("boot_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reboot_requested_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("reboot_requested_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reboot_requested_by")
        batch.drop_column("reboot_requested_at")
        batch.drop_column("boot_id")
