"""Alembic environment: runs on a connection handed over by `signalbeam.server.db.migrate`."""

from __future__ import annotations

from alembic import context

from signalbeam.server.db.models import Base

connection = context.config.attributes["connection"]
# Batch mode lets later migrations alter columns on SQLite, which lacks ALTER COLUMN.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
