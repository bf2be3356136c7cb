"""Every service upgrades from an empty database to head, and its models equal its migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, delete, insert, select, text
from sqlalchemy.engine import Connection

from shared.db import create_engine
from shared.db.migrate import alembic_config, downgrade, known_objects, upgrade
from tests.support.harness import SERVICES
from tests.support.infra import create_database, drop_database


def _metadata(name: str) -> MetaData:
    metadata = SERVICES[name].infra.outbox_event.metadata
    assert isinstance(metadata, MetaData)
    return metadata


def _before(doc: str, name: str) -> str:
    """The revision just before the one of ``name`` whose message is ``doc``."""
    scripts = ScriptDirectory.from_config(alembic_config(SERVICES[name].migrations, "sqlite://"))
    [found] = [script for script in scripts.walk_revisions() if script.doc == doc]
    assert isinstance(found.down_revision, str)
    return found.down_revision


def _diff(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": known_objects(metadata)}
    )
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


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_sqlite_outbox_ids_are_never_reused_after_upgrade(name: str, tmp_path: Path) -> None:
    """A database from before the AUTOINCREMENT revision keeps its pending events, and from
    then on an id freed by a delete is never handed out again (issue 11, item 1)."""
    url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
    migrations = SERVICES[name].migrations
    await asyncio.to_thread(upgrade, migrations, url, "head")
    await asyncio.to_thread(downgrade, migrations, url, _before("outbox ids never reused", name))
    outbox = SERVICES[name].infra.outbox_event
    row = {
        "event_type": "lead.received.v1",
        "topic": "vo.leads",
        "key": b"lead",
        "value": b"{}",
        "headers": [],
        "subject": "lead",
        "created_at": datetime.now(UTC),
        "attempts": 0,
    }
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(outbox).values(event_id="pending", **row))
        await asyncio.to_thread(upgrade, migrations, url, "head")
        async with engine.begin() as connection:
            schema = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'outbox_event'")
            )
            assert "AUTOINCREMENT" in str(schema)
            kept = (await connection.execute(select(outbox.c.id, outbox.c.event_id))).all()
            assert [tuple(found) for found in kept] == [(1, "pending")]
            await connection.execute(delete(outbox))
            await connection.execute(insert(outbox).values(event_id="next", **row))
            assert await connection.scalar(select(outbox.c.id)) == 2
    finally:
        await engine.dispose()
