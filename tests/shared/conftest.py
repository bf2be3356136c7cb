"""Fixtures of the shared package's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.harness import migrate, settings_for
from tests.support.infra import create_database, drop_database


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def ingest_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an ingest database migrated to head (its outbox as deployments have it), on
    SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    else:
        url = await create_database()
    await migrate(settings_for("ingest", database_url=url, bus="embedded"))
    try:
        yield url
    finally:
        if request.param == "postgres":
            await drop_database(url)
