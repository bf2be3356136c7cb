"""The SQL statements an engine sends, as a test counts them (statements per lead, per batch)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def executed(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL of every statement ``engine`` sends to the driver while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))  # (connection, cursor, statement, parameters, context, many)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class Sent:
    """A statement as the driver received it."""

    sql: str
    parameters: Any
    compiled: bool  # compiled by SQLAlchemy for this execution (not ``Prepared`` driver SQL)
    autocommit: bool  # on a connection in autocommit: no BEGIN or COMMIT around it


@contextmanager
def sent(engine: AsyncEngine) -> Iterator[list[Sent]]:
    """Every statement ``engine`` sends to the driver while the block runs, with how it was
    sent (compiled for this execution or prepared; in autocommit or in a transaction)."""
    seen: list[Sent] = []

    def record(
        connection: Any, _cursor: Any, sql: str, parameters: Any, context: Any, _many: bool
    ) -> None:
        isolation = connection.get_execution_options().get("isolation_level")
        seen.append(Sent(sql, parameters, context.compiled is not None, isolation == "AUTOCOMMIT"))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
