"""Fixtures shared by every test: backends (embedded, PostgreSQL, Kafka) and the system harness.

Integration tests are marked ``postgres`` / ``kafka``. When their server is unreachable they skip,
except with ``REQUIRE_INTEGRATION=1`` (set by ``make test`` and CI), where a skip is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

from shared.settings import ServiceSettings
from tests.harness import SERVICES, settings_for

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://vo:vo@127.0.0.1:5432/postgres"
)
KAFKA_BOOTSTRAP = os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
INTEGRATION_MARKERS = ("postgres", "kafka")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    required = os.environ.get("REQUIRE_INTEGRATION") == "1"
    integration = any(item.get_closest_marker(name) for name in INTEGRATION_MARKERS)
    if required and integration and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"integration test skipped while REQUIRE_INTEGRATION=1: {report.longrepr}"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return POSTGRES_URL


async def _create_database(admin_url: str) -> str:
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


async def _drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test."""
    url = await _create_database(postgres_admin_url)
    yield url
    await _drop_database(postgres_admin_url, url)


@pytest.fixture
async def kafka_bootstrap() -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception as exc:
        pytest.skip(f"Kafka unreachable at {KAFKA_BOOTSTRAP}: {type(exc).__name__}")
    finally:
        await admin.close()
    return KAFKA_BOOTSTRAP


@pytest.fixture
def embedded_settings(tmp_path: Path) -> dict[str, ServiceSettings]:
    """The four services on SQLite files and one embedded bus file, as ``make run`` does."""
    bus_path = tmp_path / "bus.db"
    return {
        name: settings_for(
            name,
            database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
            bus="embedded",
            embedded_bus_path=bus_path,
        )
        for name in SERVICES
    }


@pytest.fixture
async def production_settings(
    postgres_admin_url: str, kafka_bootstrap: str
) -> AsyncIterator[dict[str, ServiceSettings]]:
    """The four services on their own PostgreSQL databases and Kafka (unique topic prefix)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    urls = {name: await _create_database(postgres_admin_url) for name in SERVICES}
    yield {
        name: settings_for(
            name,
            database_url=urls[name],
            bus="kafka",
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=prefix,
            topic_partitions=2,
        )
        for name in SERVICES
    }
    for url in urls.values():
        await _drop_database(postgres_admin_url, url)
