"""The packaged migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from signalbeam.server.db.migrate import upgrade_to_head
from signalbeam.server.db.models import Base
from signalbeam.server.db.session import create_engine


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_models_and_rerun_cleanly(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        await upgrade_to_head(engine)  # a restart runs it again: nothing to do, nothing breaks
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        assert differences == [], "models changed without a migration: add one with alembic"
    finally:
        await engine.dispose()
