"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; NORMAL is durable across
    # application crashes and only risks the last commits on power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def is_sqlite(url: str) -> bool:
    """True for the embedded SQLite backend."""
    return url.startswith("sqlite")


def _json_text(value: Any) -> str:
    # Every sync writes three JSON columns; orjson encodes them several times faster than
    # the standard library, which showed up in the ingest profile.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(url: str) -> AsyncEngine:
    """An async engine with the right settings for the backend behind `url`."""
    json_codec: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
    if is_sqlite(url):
        # A pool as large as the concurrency we expect: each new aiosqlite connection costs
        # a thread and the PRAGMAs, so churning connections under load is expensive.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 10},
            pool_size=32,
            max_overflow=32,
            pool_timeout=30,
            **json_codec,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=32, max_overflow=32, pool_pre_ping=True, **json_codec)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (routes read them afterwards)."""
    return async_sessionmaker(engine, expire_on_commit=False)
