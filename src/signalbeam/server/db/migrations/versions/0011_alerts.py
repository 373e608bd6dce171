"""alert rules, incidents and their timelines, conditions waiting to fire, worker cursors;
the default rules for every tenant there is

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import signalbeam.server.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# As domain/alerts.py DEFAULT_RULES had them when this migration was written.
DEFAULTS = (
    ("device-offline", "device_offline", "critical", 300),
    ("update-failed", "update_failed", "warning", 0),
    ("rollout-rolled-back", "rollout_rolled_back", "critical", 0),
)


def upgrade() -> None:
    op.create_table(
        "worker_cursors",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("for_seconds", sa.Integer(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("group_name", sa.String(length=63), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column(
            "updated_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    op.create_table(
        "alert_waits",
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("device_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("since", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["device_pk"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", "subject"),
    )
    op.create_index("ix_alert_waits_due", "alert_waits", ["due_at"], unique=False)
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("device_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "opened_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_fired_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("fired_count", sa.Integer(), nullable=False),
        sa.Column(
            "acknowledged_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column(
            "resolved_at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("resolved_by", sa.String(length=255), nullable=True),
        sa.Column("cause", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["device_pk"], ["devices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incidents_subject", "incidents", ["rule_id", "subject", "id"], unique=False)
    op.create_index(
        "ix_incidents_tenant_state", "incidents", ["tenant_id", "state", "id"], unique=False
    )
    op.create_table(
        "incident_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", signalbeam.server.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_incident_entries_incident", "incident_entries", ["incident_id", "id"], unique=False
    )

    _default_rules()


def _default_rules() -> None:
    bind = op.get_bind()
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    when = signalbeam.server.db.models.UtcDateTime(timezone=True)
    rules = sa.table(
        "alert_rules",
        *(sa.column(name) for name in ("tenant_id", "name", "kind", "severity", "for_seconds")),
        sa.column("enabled", sa.Boolean()),
        sa.column("created_by"),
        sa.column("created_at", when),
        sa.column("updated_at", when),
    )
    now = datetime.now(UTC)
    rows = [
        {
            "tenant_id": tenant,
            "name": name,
            "kind": kind,
            "severity": severity,
            "for_seconds": seconds,
            "enabled": True,
            "created_at": now,
            "created_by": "system:signalbeam",
            "updated_at": now,
        }
        for tenant in tenants
        for name, kind, severity, seconds in DEFAULTS
    ]
    if rows:
        op.bulk_insert(rules, rows)


def downgrade() -> None:
    for index, table in (
        ("ix_incident_entries_incident", "incident_entries"),
        ("ix_incidents_tenant_state", "incidents"),
        ("ix_incidents_subject", "incidents"),
        ("ix_alert_waits_due", "alert_waits"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("incident_entries", "incidents", "alert_waits", "alert_rules", "worker_cursors"):
        op.drop_table(table)
