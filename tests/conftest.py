"""Fixtures shared by every test: backends (embedded, PostgreSQL, Kafka) and the system harness.

Integration tests are marked ``postgres`` / ``kafka``. When their server is unreachable they skip,
except with ``REQUIRE_INTEGRATION=1`` (set by ``make test`` and CI), where a skip is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from tests.support.harness import SERVICES, settings_for
from tests.support.infra import create_database, drop_database, require_kafka

INTEGRATION_MARKERS = ("postgres", "kafka", "imap", "smtp", "oidc")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    required = os.environ.get("REQUIRE_INTEGRATION") == "1"
    integration = any(item.get_closest_marker(name) for name in INTEGRATION_MARKERS)
    # Outside CI a developer may run the suite while others share the broker: no restart then.
    tolerated = item.get_closest_marker("broker_restart") and os.environ.get("CI") != "true"
    if required and integration and report.skipped and not tolerated:
        report.outcome = "failed"
        report.longrepr = f"integration test skipped while REQUIRE_INTEGRATION=1: {report.longrepr}"
    return report


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test."""
    url = await create_database()
    yield url
    await drop_database(url)


@pytest.fixture
async def kafka_bootstrap() -> str:
    return await require_kafka()


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
async def production_settings(kafka_bootstrap: str) -> AsyncIterator[dict[str, ServiceSettings]]:
    """The four services on their own PostgreSQL databases and Kafka (unique topic prefix)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    urls = {name: await create_database() for name in SERVICES}
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
        await drop_database(url)
