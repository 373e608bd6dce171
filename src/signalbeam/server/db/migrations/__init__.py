"""Alembic migrations, run by the server at start-up on SQLite and PostgreSQL alike."""
