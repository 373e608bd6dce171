"""webhooks: notifiers subscribed to recorded events, and the event each delivery carries

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite keeps the tables (and the deliveries' attempts) as they are.
    with op.batch_alter_table("notifiers") as batch:
        batch.add_column(sa.Column("events", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("event_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_deliveries_event", "deliveries", ["notifier_id", "event_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_deliveries_event", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("event_id")
    with op.batch_alter_table("notifiers") as batch:
        batch.drop_column("events")
