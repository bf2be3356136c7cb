"""Reaching the test servers: a fresh PostgreSQL database per test, the Kafka broker."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://vo:vo@127.0.0.1:5432/postgres"
)
KAFKA_BOOTSTRAP = os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str = POSTGRES_URL) -> str:
    """A new, empty database; skips the test when PostgreSQL is unreachable."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL unreachable at {make_url(admin_url).host}: {type(exc).__name__}")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, admin_url: str = POSTGRES_URL) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
    try:
        for attempt in range(40):
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                # FORCE may not end an autovacuum worker busy on the database (it runs as the
                # superuser); it finishes within moments on a test database.
                if attempt == 39:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await connection.close()


async def require_kafka() -> str:
    """The bootstrap address; skips the test when the broker does not answer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception as exc:
        pytest.skip(f"Kafka unreachable at {KAFKA_BOOTSTRAP}: {type(exc).__name__}")
    finally:
        await admin.close()
    return KAFKA_BOOTSTRAP
