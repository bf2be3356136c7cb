"""Alembic helpers: each service's ``migrations/env.py`` calls ``run_migrations(metadata)``, and
code and tests upgrade a database with ``upgrade(script_location, url)``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from shared.db.engine import ensure_sqlite_folder
from shared.db.types import UtcDateTime


def alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    """Blocking: call from sync code or through ``asyncio.to_thread``."""
    ensure_sqlite_folder(url)
    command.upgrade(alembic_config(script_location, url), revision)


def downgrade(script_location: Path, url: str, revision: str) -> None:
    """Blocking, like ``upgrade`` (tests step a database back to check a revision's upgrade)."""
    command.downgrade(alembic_config(script_location, url), revision)


def run_migrations(metadata: MetaData) -> None:
    """Body of every service's env.py (online mode, async engine)."""
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(config, metadata))


async def _run_online(config: Config, metadata: MetaData) -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync, metadata)
    await engine.dispose()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes our UtcDateTime as plain ``sa.DateTime(timezone=True)``: migrations
    stay free of project imports."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def known_objects(metadata: MetaData) -> Callable[..., bool]:
    """Alembic's ``include_object`` for ``metadata``: leaves out of the comparison the objects a
    migration creates on purpose outside the models, named in ``metadata.info["database_only"]``
    (``<table>.<column>``, an index or a table), so autogenerate never proposes to drop them."""
    database_only: set[str] = metadata.info.get("database_only", set())

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if not reflected or compare_to is not None:
            return True
        if type_ == "column":
            return f"{obj.table.name}.{name}" not in database_only
        return not (type_ in ("index", "table") and name in database_only)

    return include


def _run_sync(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=known_objects(metadata),
        compare_type=True,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
