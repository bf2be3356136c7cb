"""Async engine for SQLite (aiosqlite) and PostgreSQL (asyncpg), chosen by URL only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 10


def create_engine(
    url: str,
    *,
    application_name: str = "vo-leads",
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
) -> AsyncEngine:
    """Build the engine; SQLite gets WAL, a busy timeout, foreign keys and secure delete on every
    connection. On PostgreSQL the pool keeps ``pool_size`` connections once opened; the
    ``max_overflow`` beyond are closed when returned (docs/operations.md, Connections)."""
    if make_url(url).get_backend_name() == "sqlite":
        ensure_sqlite_folder(url)
        # hide_parameters: error texts must never quote values (they may be personal data).
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            hide_parameters=True,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        hide_parameters=True,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        pool_recycle=1800,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={
            "server_settings": {"application_name": application_name},
            # Per connection. The default (100) is below the distinct statements a worker runs
            # (handlers, claims, outbox, timers): a miss costs a round trip to prepare again.
            "prepared_statement_cache_size": 500,
        },
    )


async def truncate_wal(engine: AsyncEngine) -> None:
    """SQLite: copy the write-ahead log into the database and empty the log file, so that rows
    deleted (and zeroed, ``secure_delete``) leave no older copy in the ``-wal`` file. Waits for
    readers (busy timeout). PostgreSQL: nothing to do here (docs/operations.md)."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = result.scalar()  # 1 when readers or a writer kept it from completing
    if busy:
        raise OperationalError("PRAGMA wal_checkpoint(TRUNCATE)", None, Exception("busy"))


def json_text(value: Any) -> str:
    """JSON columns through orjson: several times faster than ``json`` for the dicts written
    with every lead and event (non-string keys become strings, as ``json`` did)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows are overwritten with zeros, not left in free space (erasure, GDPR Art. 17).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
