"""SQL of the leads module.

Accepting a lead is the hot path of the JSON intake: its statements are built once (per dialect)
and executed with the rows as parameters, so no request pays for statement construction.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

import orjson
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import JSON, Column, Insert, Table, TextClause, bindparam, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ingest.models import Lead
from shared.db.engine import json_text
from shared.db.prepared import Prepared
from shared.db.repository import Repository
from shared.db.session import open_autocommit
from shared.db.types import UtcDateTime
from shared.outbox import Outbox, insert_into

_LEAD = cast(Table, Lead.__table__)


class LeadRepository(Repository):
    async def get(self, lead_id: str) -> Lead | None:
        return await self.session.get(Lead, lead_id)

    async def get_by_source_ref(self, source: str, source_ref: str) -> Lead | None:
        return await self.session.scalar(
            select(Lead).where(Lead.source == source, Lead.source_ref == source_ref)
        )

    async def insert_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert ``row`` unless its (source, source_ref) is known: one ``INSERT … ON CONFLICT DO
        NOTHING RETURNING`` decides (no read-before-write; concurrent replays cannot both win)."""
        return await self.session.scalar(_insert_new(self._dialect()), row) is not None

    async def insert_new(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert every row whose (source, source_ref) is new, in one multi-row statement;
        returns the ids inserted."""
        result = await self.session.execute(_insert_new(self._dialect()), rows)
        return set(result.scalars())

    async def ids_by_source_ref(
        self, refs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Ids of the leads with these (source, source_ref) pairs."""
        rows = await self.session.execute(_IDS_BY_SOURCE_REF, {"refs": list(refs)})
        return {(source, source_ref): lead_id for source, source_ref, lead_id in rows}

    async def accept_new(
        self,
        outbox: Outbox,
        rows: Sequence[Mapping[str, Any]],
        events: Sequence[Mapping[str, Any]],
    ) -> set[str]:
        """Insert every row whose (source, source_ref) is new and stage the events (outbox rows,
        ``subject`` = lead id) of those inserted, in two multi-row inserts (run them in one
        transaction); returns the ids inserted. PostgreSQL has it in one statement without a
        session: ``LeadBatchWriter``."""
        inserted = await self.insert_new(rows)
        fresh = [event for event in events if event["subject"] in inserted]
        if fresh:
            await self.stage_events(outbox, fresh)
        return inserted

    async def stage_events(self, outbox: Outbox, events: Sequence[Mapping[str, Any]]) -> None:
        """Outbox rows built beforehand (``shared.outbox.event_row``), in one statement."""
        await self.session.execute(insert_into(outbox.table), events)

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name


class LeadBatchWriter:
    """``LeadRepository.accept_new`` on PostgreSQL, in ONE statement (both inserts, from two
    JSON documents: the same statement whatever the batch size), atomic on its own, so it runs
    in autocommit: one round trip, no BEGIN and COMMIT. Compiled once (``Prepared``) and
    prepared once per connection by the driver itself, then executed on the driver's
    connection: no SQLAlchemy compile-cache look-up, ORM or Core execution layer per batch (the
    Core layer alone was ~110 Python calls a statement, a seventh of a lone lead's, measured).
    A driver error is raised as SQLAlchemy raises it (``sqlalchemy.exc.DBAPIError``, the
    driver's error its ``orig``), so that callers and the last resort see what they saw.

    Its pooled connection is held between batches: a checkout, the isolation level set and
    reset, an ORM session's begin and commit were ~220 of the ~300 SQLAlchemy calls of a lone
    lead (measured). It goes back to the pool after an error (the next batch takes another;
    one the driver found closed is discarded) and once held ``HOLD_S`` (so the pool's
    recycling still applies), and at ``close``. One caller at a time (the group commit's
    writer)."""

    HOLD_S = 60.0

    def __init__(self, engine: AsyncEngine, outbox: Table) -> None:
        self._engine = engine
        self._outbox = outbox
        self._prepared = _accept_new_prepared(outbox, engine.dialect)
        self._connection: AsyncConnection | None = None
        self._statement: PreparedStatement | None = None  # on the held connection's driver
        self._since = 0.0

    async def accept_new(
        self, rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
    ) -> set[str]:
        """Insert every row whose (source, source_ref) is new and stage the events of those
        inserted; returns the ids inserted."""
        arguments = self._prepared.arguments_of(_as_documents(rows, events, self._outbox))
        connection = await self._held()
        try:
            statement = self._statement
            if statement is None:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                statement = await driver.prepare(self._prepared.sql)
                self._statement = statement
            records = await statement.fetch(*arguments)
        except Exception as exc:
            closed = _driver_closed(connection)
            await self._give_back(invalidate=closed)
            # As SQLAlchemy raises it: its ``__cause__`` the DBAPI error, whose cause is the
            # driver's own (``shared.outage`` reads that chain).
            raise _as_sqlalchemy_error(  # noqa: B904
                exc, self._prepared.sql, self._engine.dialect, invalidated=closed
            )
        except BaseException:
            await self.close()
            raise
        return {record[0] for record in records}

    async def close(self) -> None:
        """Give the connection back to the pool (a broken one is discarded by the pool)."""
        await self._give_back(invalidate=False)

    async def _give_back(self, *, invalidate: bool) -> None:
        connection, self._connection, self._statement = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                if invalidate:
                    await connection.invalidate()
                await connection.close()

    async def _held(self) -> AsyncConnection:
        if self._connection is not None and time.monotonic() - self._since > self.HOLD_S:
            await self.close()
        if self._connection is None:
            self._connection = await open_autocommit(self._engine)
            self._since = time.monotonic()
        return self._connection


def _driver_closed(connection: AsyncConnection) -> bool:
    """The driver's connection is closed (the server went away): the pool must not keep it."""
    sync = connection.sync_connection
    try:
        fairy = sync.connection if sync is not None else None
    except Exception:
        return True
    driver = getattr(fairy, "driver_connection", None)
    return bool(driver is None or driver.is_closed())


def _as_sqlalchemy_error(
    exc: Exception, sql: str, dialect: Dialect, *, invalidated: bool
) -> Exception:
    """``exc``, raised by the driver for ``sql``, as SQLAlchemy's execution raises it: the
    driver's error translated to the dialect's DBAPI class, wrapped in the matching
    ``sqlalchemy.exc.DBAPIError`` (parameters hidden, as the engine hides them; marked
    ``connection_invalidated`` when the driver's connection is closed); an error that is no
    DBAPI error (e.g. ``OSError``) as it is."""
    dbapi = dialect.loaded_dbapi
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, exc)
    except Exception as translated:
        orig: Exception = translated
    else:  # pragma: no cover - it always raises
        orig = exc
    if not isinstance(orig, dbapi.Error):
        return exc
    error = DBAPIError.instance(
        sql,
        None,
        orig,
        dbapi.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
    error.__cause__ = orig
    return error


@cache
def _accept_new_prepared(outbox: Table, dialect: Dialect) -> Prepared:
    return Prepared.compile(_accept_new_postgres(outbox), dialect)


@cache
def _insert_new(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_LEAD)
        .on_conflict_do_nothing(index_elements=["source", "source_ref"])
        .returning(_LEAD.c.id)
    )


_IDS_BY_SOURCE_REF = select(_LEAD.c.source, _LEAD.c.source_ref, _LEAD.c.id).where(
    tuple_(_LEAD.c.source, _LEAD.c.source_ref).in_(bindparam("refs", expanding=True))
)


_SQL_TYPES = {str: "TEXT", bool: "BOOLEAN", int: "BIGINT"}


def _sql_type(column: Column[Any]) -> str:
    """The type a column's values have in the batch document. Strings are TEXT: a cast to
    VARCHAR(n) would silently truncate, the insert's own assignment refuses an overlong value
    (as a lone insert does). JSON columns travel as their JSON text (so that ``None`` stays JSON
    ``null``), bytes as hex, both turned back by ``_value_of``."""
    if isinstance(column.type, JSON):
        return "TEXT"
    if isinstance(column.type, UtcDateTime):
        return "TIMESTAMPTZ"
    if column.type.python_type is bytes:
        return "TEXT"
    return _SQL_TYPES[column.type.python_type]


def _value_of(column: Column[Any], alias: str) -> str:
    """The column's value in the insert, from its field of the batch document."""
    field = f"{alias}.{column.name}"
    if isinstance(column.type, JSON):
        return f"CAST({field} AS JSON)"
    if column.type.python_type is bytes:
        return f"decode({field}, 'hex')"
    return field


@cache
def _columns(table: Table) -> tuple[Column[Any], ...]:
    """The columns a row gives (all but a generated id)."""
    return tuple(column for column in table.columns if column.autoincrement is not True)


@cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(column.name for column in _columns(table) if isinstance(column.type, JSON))


@cache
def _bytes_columns(table: Table) -> frozenset[str]:
    return frozenset(
        column.name
        for column in _columns(table)
        if not isinstance(column.type, JSON) and column.type.python_type is bytes
    )


def _recordset(table: Table, parameter: str, alias: str) -> str:
    """The rows of a JSON document parameter, numbered (``n``) in the document's order."""
    fields = ", ".join(f"{column.name} {_sql_type(column)}" for column in _columns(table))
    names = ", ".join(column.name for column in _columns(table))
    return (
        f"ROWS FROM (json_to_recordset(CAST(:{parameter} AS JSON)) AS ({fields}))"
        f" WITH ORDINALITY AS {alias}({names}, n)"
    )


@cache
def _accept_new_postgres(outbox: Table) -> TextClause:
    """The new leads and the events of those inserted, in one statement (PostgreSQL): a
    replayed (source, source_ref) inserts nothing and stages nothing (``ON CONFLICT DO
    NOTHING``: no read before the write; concurrent replays cannot both win). The events keep
    the batch's order (outbox ids are the relay's order).

    The rows travel as two JSON documents (``_as_documents``), read by ``json_to_recordset``:
    one parameter each, encoded by orjson, where arrays of 30 columns cost asyncpg an encoding
    step per value (a tenth of the request's CPU)."""
    lead_columns = _columns(_LEAD)
    event_columns = _columns(outbox)
    return text(
        f"WITH new_lead AS (INSERT INTO {_LEAD.name}"
        f" ({', '.join(column.name for column in lead_columns)})"
        f" SELECT {', '.join(_value_of(column, 'l') for column in lead_columns)}"
        f" FROM {_recordset(_LEAD, 'leads', 'l')}"
        " ON CONFLICT (source, source_ref) DO NOTHING RETURNING id),"
        f" staged AS (INSERT INTO {outbox.name}"
        f" ({', '.join(column.name for column in event_columns)})"
        f" SELECT {', '.join(_value_of(column, 'e') for column in event_columns)}"
        f" FROM {_recordset(outbox, 'events', 'e')}"
        " WHERE e.subject IN (SELECT id FROM new_lead) ORDER BY e.n)"
        " SELECT id FROM new_lead"
    )


def _as_documents(
    rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], outbox: Table
) -> dict[str, str]:
    """The rows as the two JSON documents of ``_accept_new_postgres``: JSON columns as the text
    SQLAlchemy would write (``None`` is JSON ``null``, not SQL NULL), bytes as hex, instants
    with their offset (orjson's RFC 3339, to the microsecond)."""
    documents: dict[str, str] = {}
    for name, table, values in (("leads", _LEAD, rows), ("events", outbox, events)):
        json_columns, bytes_columns = _json_columns(table), _bytes_columns(table)
        records = []
        for value in values:
            record = dict(value)
            for column in json_columns:
                record[column] = json_text(record[column])
            for column in bytes_columns:
                data = record[column]
                record[column] = None if data is None else data.hex()
            records.append(record)
        documents[name] = orjson.dumps(records).decode()
    _require_aware(
        [row["received_at"] for row in rows]
        + [row["created_at"] for row in rows]
        + [event["created_at"] for event in events]
    )
    return documents


def _require_aware(instants: list[datetime]) -> None:
    # What ``UtcDateTime`` refuses on the other path: a naive datetime is no instant.
    if any(instant.tzinfo is None for instant in instants):
        raise ValueError("naive datetime: pass an aware one")
