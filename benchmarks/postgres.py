"""A fresh PostgreSQL database for one benchmark (``TEST_POSTGRES_URL``'s server), dropped after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.environment import POSTGRES_URL, asyncpg_dsn


@asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """The SQLAlchemy URL of a new, empty database."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE the database (outside a transaction, as VACUUM needs)."""
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
