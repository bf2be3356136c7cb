"""SQL of the queue: open, unclaimed leads whose time came (not waiting for a call-back or a
retry), call-backs first, then by due time (index-backed keyset on rank, due time, lead id)."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Table,
    bindparam,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from qualify.leads.state import OpenStatus
from qualify.models import QueuedLead
from shared.db.held import Shelf
from shared.db.prepared import Prepared
from shared.db.repository import Repository
from shared.db.session import autocommit_connection, open_autocommit
from shared.runtime import Runtime


class HeldConnections:
    """Pooled connections kept in autocommit between the operators' requests (their claims,
    qualifications and queue polls: each one statement in autocommit). Taking a connection from
    the pool, switching it to autocommit, and on return resetting it and checking it in were
    ~230 Python calls a request, a third of a claim's (measured); a held one is taken from a
    list. At most ``KEEP`` wait between requests (the pool keeps ``pool_size``; concurrent
    requests beyond take more from the pool, given back after use); each goes back to the pool
    once held ``HOLD_S`` (so the pool's recycling still applies), after an error (a broken one
    is discarded by the pool), and at ``close``."""

    KEEP = 4
    HOLD_S = 60.0

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._shelf: Shelf[AsyncConnection] = Shelf(self.KEEP, self.HOLD_S)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit (each statement one round trip, committed by itself)."""
        held = self._shelf.take()
        if held is None:
            connection, since = await open_autocommit(self._engine), time.monotonic()
        else:
            connection, since = held
        try:
            yield connection
        except BaseException:
            await _give_back(connection)
            raise
        if not self._shelf.keeps(connection, since, invalidated=connection.invalidated):
            await _give_back(connection)

    async def close(self) -> None:
        """Give the held connections back to the pool (before the engine is disposed)."""
        for connection in self._shelf.close():
            await _give_back(connection)


async def _give_back(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.close()


_HELD: weakref.WeakKeyDictionary[AsyncEngine, HeldConnections] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def hold_connections(runtime: Runtime[Any]) -> AsyncIterator[None]:
    """Lifespan hook of the API: the runtime's engine lends held autocommit connections
    (``autocommit``) while the app runs; they go back to the pool before the engine is
    disposed."""
    engine = runtime.engine
    held = _HELD[engine] = HeldConnections(engine)
    try:
        yield
    finally:
        if _HELD.get(engine) is held:
            del _HELD[engine]
        await held.close()


def autocommit(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
    """A connection in autocommit: a held one while the API runs (``hold_connections``), else
    one from the pool (``shared.db.session.autocommit_connection``)."""
    held = _HELD.get(engine)
    return autocommit_connection(engine) if held is None else held.connection()


@dataclass(frozen=True)
class QueueFilter:
    source: str | None = None
    site: str | None = None
    status: OpenStatus | None = None
    overdue: bool | None = None


QueueRow = dict[str, Any]
"""A lead as the queue's page lists it: ``QueueItem``'s fields by name, in its order."""

QueuePosition = tuple[int, datetime, str]
"""(queue_rank, due_at, lead_id): the queue's order and its keyset cursor."""


def claimable(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Open and not under an unexpired claim (an expired claim is no claim)."""
    return (QueuedLead.is_open == true()) & or_(
        QueuedLead.claim_expires_at.is_(None), QueuedLead.claim_expires_at <= now
    )


def available(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Not waiting for a call-back's time or a retry's (``leads/schedule.py``)."""
    return or_(QueuedLead.available_at.is_(None), QueuedLead.available_at <= now)


ORDER = (QueuedLead.queue_rank, QueuedLead.due_at, QueuedLead.lead_id)


def _claim_statement() -> Any:
    """The conditional UPDATE of a claim, over the table, built once (an operator claims every
    lead they handle)."""
    table = cast(Table, QueuedLead.__table__)
    c = table.c
    now = bindparam("_now", type_=c.claimed_at.type)
    operator = bindparam("_operator_id", type_=c.claimed_by.type)
    return (
        update(table)
        .where(
            c.lead_id == bindparam("_lead_id"),
            c.is_open == true(),
            or_(c.claim_expires_at.is_(None), c.claim_expires_at <= now, c.claimed_by == operator),
            # No call-back of another operator before its time (the one who set it is preferred).
            or_(c.callback_at.is_(None), c.callback_at <= now, c.callback_by == operator),
        )
        .values(
            claimed_by=operator,
            claimed_by_name=bindparam("_operator_name", type_=c.claimed_by_name.type),
            claimed_at=now,
            claim_expires_at=bindparam("_expires_at", type_=c.claim_expires_at.type),
        )
        # The claim as won (none: lost), read back by the same statement.
        .returning(c.lead_id, c.claimed_by, c.claimed_at, c.claim_expires_at)
    )


@dataclass(frozen=True)
class HeldClaim:
    """A claim as the UPDATE that won it wrote it."""

    lead_id: str
    operator_id: str
    claimed_at: datetime
    expires_at: datetime


_CLAIM = _claim_statement()


@cache
def _claim_prepared(dialect: Dialect) -> Prepared:
    """PostgreSQL: the claim compiled once to the driver's SQL (``shared.db.prepared``). What it
    returns needs no conversion there: text, and timestamps the driver reads as aware UTC
    datetimes, as ``UtcDateTime`` would make them (SQLite's are text: compiled there)."""
    return Prepared.compile(_CLAIM, dialect)


def _claim_params(
    lead_id: str, now: datetime, operator_id: str, operator_name: str, expires_at: datetime
) -> dict[str, Any]:
    return {
        "_lead_id": lead_id,
        "_now": now,
        "_operator_id": operator_id,
        "_operator_name": operator_name,
        "_expires_at": expires_at,
    }


async def claim_alone(
    engine: AsyncEngine,
    lead_id: str,
    *,
    now: datetime,
    operator_id: str,
    operator_name: str,
    expires_at: datetime,
) -> HeldClaim | None:
    """PostgreSQL: ``QueueRepository.claim`` as a unit of work of its own: the precompiled
    UPDATE on a pooled connection in autocommit, without an ORM session (one round trip, atomic
    and committed by itself). The claim won, or None."""
    params = _claim_params(lead_id, now, operator_id, operator_name, expires_at)
    async with autocommit(engine) as connection:
        return await _claim_precompiled(connection, engine.dialect, params)


async def _claim_precompiled(
    on: AsyncSession | AsyncConnection, dialect: Dialect, params: dict[str, Any]
) -> HeldClaim | None:
    """PostgreSQL: the precompiled claim, in a session's transaction or on a connection."""
    prepared = _claim_prepared(dialect)
    row = (await prepared.execute(on, prepared.arguments_of(params))).first()
    return None if row is None else HeldClaim(*row)


# What the queue's page shows of a lead, in the order of ``QueueItem``'s fields, "overdue"
# (computed at "now") after ``due_at``; then its rank, for the cursor. No ORM objects.
_SHOWN_BEFORE_OVERDUE = (
    QueuedLead.lead_id,
    QueuedLead.status,
    QueuedLead.kind,
    QueuedLead.source,
    QueuedLead.site,
    QueuedLead.received_at,
    QueuedLead.due_at,
)
_SHOWN_AFTER_OVERDUE = (
    QueuedLead.callback_at,
    QueuedLead.attempt_count,
    QueuedLead.unread_replies,
    QueuedLead.full_name,
    QueuedLead.phone,
    QueuedLead.email,
    QueuedLead.ad_ref,
)


@cache
def _page_statement(
    source: bool, site: bool, status: bool, overdue: bool | None, after: bool
) -> Any:
    """The queue's page for one combination of filters, built once (operators poll it), with
    the filters' values, ``_now``, the cursor and ``_limit`` as parameters."""
    table = cast(Table, QueuedLead.__table__)
    now: Any = bindparam("_now", type_=table.c.due_at.type)
    conditions: list[ColumnExpressionArgument[bool]] = [claimable(now), available(now)]
    if source:
        conditions.append(QueuedLead.source == bindparam("_source"))
    if site:
        conditions.append(QueuedLead.site == bindparam("_site"))
    if status:
        conditions.append(QueuedLead.status == bindparam("_status"))
    if overdue is True:
        conditions.append(QueuedLead.is_overdue(now))
    elif overdue is False:
        conditions.append(not_(QueuedLead.is_overdue(now)))
    if after:
        conditions.append(
            tuple_(*ORDER)
            > tuple_(
                bindparam("_after_rank", type_=table.c.queue_rank.type),
                bindparam("_after_due", type_=table.c.due_at.type),
                bindparam("_after_id", type_=table.c.lead_id.type),
            )
        )
    overdue_now = cast(ColumnElement[bool], QueuedLead.is_overdue(now))
    return (
        select(
            *_SHOWN_BEFORE_OVERDUE,
            overdue_now.label("overdue"),
            *_SHOWN_AFTER_OVERDUE,
            QueuedLead.queue_rank,  # last: not shown
        )
        .where(*conditions)
        .order_by(*ORDER)
        .limit(bindparam("_limit"))
    )


@dataclass(frozen=True, slots=True)
class QueuePageRows:
    items: list[QueueRow]
    # Where the next page starts: the position of this page's last lead (None: no next page).
    next_after: QueuePosition | None


@cache
def _page_prepared(
    dialect: Dialect, source: bool, site: bool, status: bool, overdue: bool | None, after: bool
) -> Prepared:
    """PostgreSQL: ``_page_statement`` compiled once to the driver's SQL. Its rows need no
    conversion there: text, integers, booleans and timestamps the driver reads as aware UTC
    datetimes, as ``UtcDateTime`` would make them (SQLite's are text: compiled there)."""
    return Prepared.compile(_page_statement(source, site, status, overdue, after), dialect)


async def read_page(
    engine: AsyncEngine,
    *,
    filters: QueueFilter,
    now: datetime,
    after: QueuePosition | None,
    limit: int,
) -> QueuePageRows:
    """Up to ``limit`` leads of the queue after ``after``: call-backs first, then earliest due,
    keyset-paginated on (rank, due_at, lead_id).

    The most frequent read (operators poll it): one statement, built once per combination of
    filters, on a pooled connection without a session or the ORM result layer; on PostgreSQL in
    autocommit (one round trip: no BEGIN, no COMMIT), precompiled, its rows as the driver reads
    them. One row more than the page tells whether a next page exists."""
    shape = (
        filters.source is not None,
        filters.site is not None,
        filters.status is not None,
        filters.overdue,
        after is not None,
    )
    params: dict[str, Any] = {
        "_now": now,
        "_limit": limit + 1,
        "_source": filters.source,
        "_site": filters.site,
        "_status": filters.status,
    }
    if after is not None:
        params["_after_rank"], params["_after_due"], params["_after_id"] = after
    if engine.dialect.name == "postgresql":
        names, rows = await _read_driver_rows(
            engine, _page_prepared(engine.dialect, *shape), params
        )
    else:
        # SQLite's BEGIN is no round trip, and switching a connection to autocommit and back
        # costs more there; its values are converted by the compiled statement's types.
        async with engine.connect() as connection:
            result = await connection.execute(_page_statement(*shape), params)
            names, rows = tuple(result.keys()), result.all()
    shown = names[:-1]  # the rank is not shown
    items = [dict(zip(shown, row, strict=False)) for row in rows[:limit]]
    if len(rows) <= limit:
        return QueuePageRows(items, None)
    last, item = rows[limit - 1], items[-1]
    return QueuePageRows(items, (last[-1], item["due_at"], item["lead_id"]))


async def _read_driver_rows(
    engine: AsyncEngine, prepared: Prepared, params: dict[str, Any]
) -> tuple[tuple[str, ...], Sequence[Any]]:
    """The column names and rows of ``prepared`` run on a pooled connection in autocommit, the
    rows as the driver returns them (no result row objects built over them)."""
    arguments = prepared.arguments_of(params)
    async with autocommit(engine) as connection:
        result = await prepared.execute(connection, arguments)
        names = tuple(result.keys())
        rows = result.cursor.fetchall()
        result.close()
    return names, rows


class QueueRepository(Repository):
    def _query(self, filters: QueueFilter, now: datetime) -> list[ColumnExpressionArgument[bool]]:
        conditions: list[ColumnExpressionArgument[bool]] = [claimable(now), available(now)]
        if filters.source is not None:
            conditions.append(QueuedLead.source == filters.source)
        if filters.site is not None:
            conditions.append(QueuedLead.site == filters.site)
        if filters.status is not None:
            conditions.append(QueuedLead.status == filters.status)
        if filters.overdue is True:
            conditions.append(QueuedLead.is_overdue(now))
        elif filters.overdue is False:
            conditions.append(not_(QueuedLead.is_overdue(now)))
        return conditions

    async def claim_next(
        self,
        *,
        filters: QueueFilter,
        now: datetime,
        operator_id: str,
        operator_name: str,
        expires_at: datetime,
    ) -> HeldClaim | None:
        """Claim the earliest-due claimable lead. On PostgreSQL the candidate is locked with
        ``FOR UPDATE SKIP LOCKED`` so concurrent operators take different leads; the UPDATE is
        conditional on both backends, so a lead is never claimed twice."""
        for _ in range(5):
            candidate = (
                select(QueuedLead.lead_id)
                .where(*self._query(filters, now))
                .order_by(*ORDER)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            lead_id = await self.session.scalar(candidate)
            if lead_id is None:
                return None
            held = await self.claim(
                lead_id,
                now=now,
                operator_id=operator_id,
                operator_name=operator_name,
                expires_at=expires_at,
            )
            if held is not None:
                return held
        return None

    async def claim(
        self,
        lead_id: str,
        *,
        now: datetime,
        operator_id: str,
        operator_name: str,
        expires_at: datetime,
    ) -> HeldClaim | None:
        """Conditional UPDATE: claims the lead only if it is open and free (or already the
        caller's), and no other operator's call-back is pending on it. Exactly one of concurrent
        callers wins: the claim it holds (None for the others). Precompiled on PostgreSQL."""
        params = _claim_params(lead_id, now, operator_id, operator_name, expires_at)
        dialect = self.session.get_bind().dialect
        if dialect.name == "postgresql":
            return await _claim_precompiled(self.session, dialect, params)
        row = (await self.session.execute(_CLAIM, params)).first()
        return None if row is None else HeldClaim(*row)
