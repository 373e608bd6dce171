"""artifact download counters per device, so a resume can be seen without a packet sniffer

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COUNTERS = ("downloads", "downloads_resumed", "downloads_cut", "download_bytes")


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in COUNTERS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in COUNTERS:
            batch.drop_column(name)
