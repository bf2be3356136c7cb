"""Every service upgrades from an empty database to head, and its models equal its migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import create_engine
from shared.db.migrate import upgrade
from tests.support.harness import SERVICES
from tests.support.infra import create_database, drop_database


def _metadata(name: str) -> MetaData:
    metadata = SERVICES[name].infra.outbox_event.metadata
    assert isinstance(metadata, MetaData)
    return metadata


def _diff(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _check(name: str, url: str) -> None:
    await asyncio.to_thread(upgrade, SERVICES[name].migrations, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff, _metadata(name))
    finally:
        await engine.dispose()
    assert diff == [], f"{name}: models and migrations differ: {diff}"


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_upgrade_to_head_on_sqlite_matches_models(name: str, tmp_path: Path) -> None:
    await _check(name, f"sqlite+aiosqlite:///{tmp_path / name}.db")


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_upgrade_to_head_on_postgres_matches_models(name: str) -> None:
    url = await create_database()
    try:
        await _check(name, url)
    finally:
        await drop_database(url)
