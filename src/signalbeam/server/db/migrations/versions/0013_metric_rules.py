"""metric rules (a metric above a threshold for a while); every tenant gets the disk-full default

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("metric", sa.String(16), nullable=True))
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        batch.add_column(sa.Column("mount", sa.String(255), nullable=True))
    _disk_full_rule()


def _disk_full_rule() -> None:
    bind = op.get_bind()
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    when = signalbeam.server.db.models.UtcDateTime(timezone=True)
    rules = sa.table(
        "alert_rules",
        *(sa.column(name) for name in ("tenant_id", "name", "kind", "severity", "for_seconds")),
        *(sa.column(name) for name in ("metric", "threshold", "created_by")),
        sa.column("enabled", sa.Boolean()),
        sa.column("created_at", when),
        sa.column("updated_at", when),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "tenant_id": tenant,
            "name": "disk-full",
            "kind": "metric_above",
            "severity": "warning",
            "for_seconds": 600,
            "metric": "disk",
            "threshold": 90.0,
            "enabled": True,
            "created_at": now,
            "created_by": "system:signalbeam",
            "updated_at": now,
        }
        for tenant in tenants
    ]
    if rows:
        op.bulk_insert(rules, rows)


def downgrade() -> None:
    op.execute("DELETE FROM alert_rules WHERE kind = 'metric_above'")
    with op.batch_alter_table("alert_rules") as batch:
        for name in ("mount", "threshold", "metric"):
            batch.drop_column(name)
