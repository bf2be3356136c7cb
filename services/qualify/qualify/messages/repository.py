"""SQL of the messages to and from the prospect: the outgoing messages (an outbox the sender
claims from) and the prospect's replies."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Result,
    Table,
    bindparam,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from qualify.messages.state import QUEUED, SENDING, SENT
from qualify.models import IncomingMessage, OutgoingMessage, QueuedLead
from shared.db.held import Shelf
from shared.db.instances import QuickConstructor
from shared.db.prepared import Prepared
from shared.db.repository import Repository
from shared.db.session import (
    SessionFactory,
    session_scope,
    wake_after_commit,
    wakeups_of,
)
from shared.events.payloads import MessageChannel
from shared.outbox import insert_into


def _row(message: Any) -> dict[str, Any]:
    table = message.__table__
    return {column.key: getattr(message, column.key) for column in table.columns}


_INSERTS_ONCE: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _insert_once(dialect: str, model: Any, conflict: tuple[str, ...]) -> Any:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` of ``model``, built once per dialect and
    executed with the row as parameters: ``.values(row)`` on every call coerces each column
    again (a third of the cost of queueing a message in the worker's profile)."""
    key = (dialect, model.__tablename__, conflict)
    statement = _INSERTS_ONCE.get(key)
    if statement is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(model.__table__).on_conflict_do_nothing(index_elements=list(conflict))
        _INSERTS_ONCE[key] = statement
    return statement


@cache
def _insert_once_returning_id(dialect: str) -> Any:
    """``_insert_once`` of outgoing messages on their ``dedupe_key``, returning the ids it
    inserted: executed with several rows, SQLAlchemy sends them as one multi-row INSERT."""
    table = cast(Table, OutgoingMessage.__table__)
    return _insert_once(dialect, OutgoingMessage, ("dedupe_key",)).returning(table.c.id)


# The columns of an outgoing message, in the table's order (a row of ``_row``).
_MESSAGE_COLUMNS = tuple(column.key for column in cast(Table, OutgoingMessage.__table__).columns)


def _column_values(message: OutgoingMessage) -> list[Any]:
    """The columns of ``message`` in the table's order, as ``getattr`` reads them; a new one
    (never loaded nor flushed) from its state's dict, where an attribute not set is None, as
    its ``getattr`` says (without its slow path: ~7 us per message)."""
    if inspect(message).key is None:
        values = message.__dict__
        return [values.get(key) for key in _MESSAGE_COLUMNS]
    return [getattr(message, key) for key in _MESSAGE_COLUMNS]


_NEW_MESSAGE = QuickConstructor(OutgoingMessage)


def new_outgoing(**values: Any) -> OutgoingMessage:
    """``OutgoingMessage(**values)`` without an attribute event each (~16 us per message): what
    an insert reads (``add_all_once``, a flush) is its state (``shared.db.instances``)."""
    return _NEW_MESSAGE.new(**values)


@cache
def _insert_rows_once_prepared(dialect: Dialect, count: int) -> Prepared:
    """PostgreSQL: ``_insert_once_returning_id`` of ``count`` rows as one ``INSERT … VALUES
    (…), (…) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``, compiled once per count (a
    first answer has one or two): its arguments are the rows' columns, row after row, in
    ``_MESSAGE_COLUMNS``'s order. SQLAlchemy's own path builds the multi-row insert, its
    parameters and their processing anew for every lead."""
    table = cast(Table, OutgoingMessage.__table__)
    rows = [
        {key: bindparam(f"{key}__{index}", type_=table.c[key].type) for key in _MESSAGE_COLUMNS}
        for index in range(count)
    ]
    statement = (
        pg_insert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)
    )
    prepared = Prepared.compile(statement, dialect)
    # Row after row, each in the columns' order: ``arguments`` takes the values as they come.
    expected = tuple(f"{key}__{index}" for index in range(count) for key in _MESSAGE_COLUMNS)
    if prepared.names != expected:  # pragma: no cover - a compiler that orders otherwise
        raise ValueError("unexpected parameter order in the multi-row insert")
    return prepared


@cache
def _update_claimed(columns: frozenset[str]) -> Any:
    """``UPDATE outgoing_message SET <columns> WHERE id, claim_token and status match``, over the
    table (no ORM bulk-update machinery), built once per set of columns: the sender writes a
    handful of fixed sets, twice per message."""
    table = cast(Table, OutgoingMessage.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("_message_id"),
            table.c.claim_token == bindparam("_held_by"),
            table.c.status == SENDING,
        )
        .values({name: bindparam(name, type_=table.c[name].type) for name in sorted(columns)})
    )


@cache
def _update_claimed_staging(
    columns: frozenset[str], outbox: Table, event_columns: tuple[str, ...]
) -> Any:
    """PostgreSQL: ``_update_claimed`` and the outbox row of its outcome as one statement,
    ``WITH changed AS (UPDATE … RETURNING id) INSERT INTO outbox … SELECT … FROM changed``: the
    event is staged exactly when the claim held, in one round trip instead of two. The values
    of ``event_columns`` are the parameters ``_event_<column>``."""
    table = cast(Table, OutgoingMessage.__table__)
    changed = _update_claimed(columns).returning(table.c.id).cte("changed")
    values = select(
        *(bindparam(f"_event_{name}", type_=outbox.c[name].type) for name in event_columns)
    ).select_from(changed)
    return insert(outbox).from_select(list(event_columns), values).add_cte(changed)


@cache
def _claim_due(postgres: bool) -> Any:
    """Queued messages due by ``_now`` on ``_channels``, oldest first: built once per backend
    (every pass of the sender runs it, most find nothing)."""
    query = (
        select(OutgoingMessage)
        .where(
            OutgoingMessage.status == QUEUED,
            OutgoingMessage.next_attempt_at <= bindparam("_now"),
            OutgoingMessage.channel.in_(bindparam("_channels", expanding=True)),
        )
        .order_by(OutgoingMessage.next_attempt_at, OutgoingMessage.id)
        .limit(bindparam("_limit"))
    )
    return query.with_for_update(skip_locked=True) if postgres else query


@cache
def _expired_claims(postgres: bool) -> Any:
    """Claims whose lease ran out by ``_now``: built once per backend (every pass runs it)."""
    query = (
        select(OutgoingMessage)
        .where(
            OutgoingMessage.status == SENDING,
            OutgoingMessage.lease_expires_at <= bindparam("_now"),
        )
        .order_by(OutgoingMessage.lease_expires_at)
        .limit(bindparam("_limit"))
    )
    return query.with_for_update(skip_locked=True) if postgres else query


@cache
def _has_work() -> Any:
    """Whether a pass of the sender would find anything: a message due on ``_channels``, or a
    claim whose lease ran out (one read, no lock: the pass that follows locks)."""
    table = cast(Table, OutgoingMessage.__table__)
    c = table.c
    now = bindparam("_now", type_=c.next_attempt_at.type)
    due = (
        (c.status == QUEUED)
        & (c.next_attempt_at <= now)
        & c.channel.in_(bindparam("_channels", expanding=True))
    )
    expired = (c.status == SENDING) & (c.lease_expires_at <= now)
    return select(c.id).where(or_(due, expired)).limit(1)


@cache
def _update_claimed_prepared(dialect: Dialect, columns: frozenset[str]) -> Prepared:
    """``_update_claimed`` compiled once per set of columns (the sender's hand-over of every
    message, its retries)."""
    return Prepared.compile(_update_claimed(columns), dialect)


@cache
def _update_claimed_staging_prepared(
    dialect: Dialect, columns: frozenset[str], outbox: Table, event_columns: tuple[str, ...]
) -> Prepared:
    """``_update_claimed_staging`` compiled once per set of columns (every message's
    outcome)."""
    return Prepared.compile(_update_claimed_staging(columns, outbox, event_columns), dialect)


def _staging(
    message_id: str, held_by: str, outbox: Table, event: dict[str, Any], values: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL's ``update_claimed_staging``: the statement and its parameters."""
    parameters = {f"_event_{name}": value for name, value in event.items()}
    statement = _update_claimed_staging(frozenset(values), outbox, tuple(sorted(event)))
    return statement, {"_message_id": message_id, "_held_by": held_by, **values, **parameters}


def _give_back(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        connection.close()


def _alone(engine: Engine, sql: str, arguments: tuple[Any, ...]) -> int:
    """``sql`` on a pooled connection in autocommit mode (``autocommit_connection``'s), as one
    call in SQLAlchemy's greenlet: the rows it changed."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        return int(connection.exec_driver_sql(sql, arguments).rowcount)


class ClaimedWrites:
    """The sender's writes of a message it claimed (the hand-over, the outcome and its event),
    each its own unit of work, fenced by the claim token as ``MessageRepository.update_claimed``
    is. On PostgreSQL each is one statement in autocommit on a pooled connection, without an
    ORM session around it: the session's set-up, its execute path and its close cost more
    client CPU than the statement itself (two per message sent). Elsewhere (SQLite) a
    ``session_scope`` with the repository's methods. On PostgreSQL the statements are
    ``Prepared`` (compiled once per set of columns), run with the connection's checkout and
    return in one hop into SQLAlchemy's greenlet (``AsyncConnection`` makes four: connect, the
    isolation level, the statement, close). With ``hold`` (the worker's sender, which
    ``close``s it when it stops) the connections wait in autocommit between writes, as the
    API's ``HeldConnections`` do: no checkout, isolation level and reset per write. The
    channels of what was staged (the outbox relay) are woken once it is done, as
    ``session_scope`` does."""

    # With ``hold`` (the worker's sender): at most KEEP connections wait in autocommit between
    # writes, each given back to the pool once held HOLD_S, after an error, and at ``close``.
    KEEP = 2
    HOLD_S = 60.0

    def __init__(self, factory: SessionFactory, *, hold: bool = False) -> None:
        self._factory = factory
        engine: AsyncEngine = factory.kw["bind"]
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._hold = hold
        self._shelf: Shelf[Connection] = Shelf(self.KEEP, self.HOLD_S)

    async def _run(self, sql: str, arguments: tuple[Any, ...]) -> int:
        """``sql`` in autocommit, the rows it changed: on a held connection with ``hold``, else
        on one from the pool (``_alone``); one hop into SQLAlchemy's greenlet either way."""
        if not self._hold:
            return await greenlet_spawn(_alone, self._engine.sync_engine, sql, arguments)
        return await greenlet_spawn(self._on_held, sql, arguments)

    def _on_held(self, sql: str, arguments: tuple[Any, ...]) -> int:
        held = self._shelf.take()
        if held is None:
            connection = self._engine.sync_engine.connect()
            try:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            except BaseException:
                connection.close()
                raise
            since = time.monotonic()
        else:
            connection, since = held
        try:
            changed = int(connection.exec_driver_sql(sql, arguments).rowcount)
        except BaseException:
            _give_back(connection)  # a broken one is discarded by the pool
            raise
        if not self._shelf.keeps(connection, since, invalidated=connection.invalidated):
            _give_back(connection)
        return changed

    async def close(self) -> None:
        """Give the held connections back to the pool (before the engine is disposed)."""
        for connection in self._shelf.close():
            await greenlet_spawn(_give_back, connection)

    @property
    def held(self) -> int:
        """Connections waiting for the next write."""
        return len(self._shelf)

    async def update(self, message_id: str, held_by: str, /, **values: Any) -> bool:
        """``MessageRepository.update_claimed`` in a unit of work of its own."""
        if not self._postgres:
            async with session_scope(self._factory) as session:
                return await MessageRepository(session).update_claimed(
                    message_id, held_by, **values
                )
        prepared = _update_claimed_prepared(self._engine.dialect, frozenset(values))
        arguments = prepared.arguments_of(
            {"_message_id": message_id, "_held_by": held_by, **values}
        )
        changed = await self._run(prepared.sql, arguments)
        return changed == 1

    async def update_staging(
        self, message_id: str, held_by: str, /, outbox: Table, event: dict[str, Any], **values: Any
    ) -> bool:
        """``MessageRepository.update_claimed_staging`` in a unit of work of its own."""
        if not self._postgres:
            async with session_scope(self._factory) as session:
                return await MessageRepository(session).update_claimed_staging(
                    message_id, held_by, outbox=outbox, event=event, **values
                )
        prepared = _update_claimed_staging_prepared(
            self._engine.dialect, frozenset(values), outbox, tuple(sorted(event))
        )
        parameters = {f"_event_{name}": value for name, value in event.items()}
        arguments = prepared.arguments_of(
            {"_message_id": message_id, "_held_by": held_by, **values, **parameters}
        )
        changed = await self._run(prepared.sql, arguments)
        if changed != 1:
            return False
        wakeups_of(self._factory).notify({outbox.name})
        return True


class MessageRepository(Repository):
    def _insert_once(self, model: Any, *conflict: str) -> Any:
        return _insert_once(self.session.get_bind().dialect.name, model, conflict)

    @property
    def is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # --- writing --------------------------------------------------------------------------

    def add(self, message: OutgoingMessage) -> None:
        self.session.add(message)
        self._wake_sender()

    async def add_once(self, message: OutgoingMessage, *, wake: bool = True) -> bool:
        """Insert unless a message with its ``dedupe_key`` exists (replicas, retries, replays):
        True when this call inserted it. ``wake=False``: the message needs no pass of the
        sender (claimed already, ``SenderHandoff``)."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                self._insert_once(OutgoingMessage, "dedupe_key"), _row(message)
            ),
        )
        inserted = bool(result.rowcount == 1)
        if inserted and wake:
            self._wake_sender()
        return inserted

    async def add_all_once(self, messages: Sequence[OutgoingMessage], *, wake: bool) -> set[str]:
        """``add_once`` of several messages in one statement (a multi-row insert): the ids of
        those this call inserted. ``wake``: whether an inserted one needs a pass of the
        sender."""
        if not messages:
            return set()
        dialect = self.session.get_bind().dialect
        result: Result[Any]
        if dialect.name == "postgresql":
            prepared = _insert_rows_once_prepared(dialect, len(messages))
            values = [value for message in messages for value in _column_values(message)]
            result = await prepared.execute(self.session, prepared.arguments(values))
        else:
            statement = _insert_once_returning_id(dialect.name)
            result = await self.session.execute(statement, [_row(message) for message in messages])
        inserted = set(result.scalars().all())
        if inserted and wake:
            self._wake_sender()
        return inserted

    def _wake_sender(self) -> None:
        # Once committed, the sender starts at once: in this process by a signal, from another
        # (the API's operator messages) by the notify_on_work trigger or SQLite's data_version.
        wake_after_commit(self.session, OutgoingMessage.__tablename__)

    async def add_incoming(self, message: IncomingMessage) -> bool:
        """Insert unless this inbound message (channel, ingest's id) was recorded already."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                self._insert_once(IncomingMessage, "channel", "source_message_id"), _row(message)
            ),
        )
        return bool(result.rowcount == 1)

    # --- reading --------------------------------------------------------------------------

    async def get(self, message_id: str) -> OutgoingMessage | None:
        return await self.session.get(OutgoingMessage, message_id, populate_existing=True)

    async def get_incoming(self, message_id: str) -> IncomingMessage | None:
        return await self.session.get(IncomingMessage, message_id)

    async def outgoing_of(self, lead_id: str) -> Sequence[OutgoingMessage]:
        return (
            await self.session.scalars(
                select(OutgoingMessage)
                .where(OutgoingMessage.lead_id == lead_id)
                .order_by(OutgoingMessage.created_at, OutgoingMessage.id)
            )
        ).all()

    async def incoming_of(self, lead_id: str) -> Sequence[IncomingMessage]:
        return (
            await self.session.scalars(
                select(IncomingMessage)
                .where(IncomingMessage.lead_id == lead_id)
                .order_by(IncomingMessage.received_at, IncomingMessage.id)
            )
        ).all()

    async def by_provider_id(
        self, channel: MessageChannel, provider_message_id: str
    ) -> OutgoingMessage | None:
        return await self.session.scalar(
            select(OutgoingMessage)
            .where(
                OutgoingMessage.channel == channel,
                OutgoingMessage.provider_message_id == provider_message_id,
            )
            .with_for_update()
        )

    async def queued_to(
        self, channel: MessageChannel, addresses: Collection[str]
    ) -> Sequence[OutgoingMessage]:
        """Messages not yet claimed to any of ``addresses`` on ``channel`` (to cancel them)."""
        return (
            await self.session.scalars(
                select(OutgoingMessage)
                .where(
                    OutgoingMessage.status == QUEUED,
                    OutgoingMessage.channel == channel,
                    OutgoingMessage.to_address.in_(list(addresses)),
                )
                .with_for_update()
            )
        ).all()

    # --- replies read ---------------------------------------------------------------------

    async def mark_read(self, lead_id: str, *, at: datetime, by: str) -> int:
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                update(IncomingMessage)
                .where(IncomingMessage.lead_id == lead_id, IncomingMessage.read_at.is_(None))
                .values(read_at=at, read_by=by)
                .execution_options(synchronize_session=False)
            ),
        )
        await self.session.execute(
            update(QueuedLead)
            .where(QueuedLead.lead_id == lead_id)
            .values(unread_replies=0)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)

    # --- the sender -----------------------------------------------------------------------

    async def claim_due(
        self, now: datetime, channels: Collection[MessageChannel], limit: int
    ) -> Sequence[OutgoingMessage]:
        """Queued messages due by ``now`` on ``channels``, oldest first, locked for this
        transaction (``SKIP LOCKED`` on PostgreSQL: replicas claim different ones)."""
        return (
            await self.session.scalars(
                _claim_due(self.is_postgres),
                {"_now": now, "_channels": list(channels), "_limit": limit},
            )
        ).all()

    async def has_work(self, now: datetime, channels: Collection[MessageChannel]) -> bool:
        """A message due by ``now`` on ``channels``, or an expired claim, exists."""
        found = await self.session.scalar(_has_work(), {"_now": now, "_channels": list(channels)})
        return found is not None

    async def expired_claims(self, now: datetime, limit: int) -> Sequence[OutgoingMessage]:
        """Messages whose sender's lease ran out (the sender died, or stalled)."""
        return (
            await self.session.scalars(
                _expired_claims(self.is_postgres), {"_now": now, "_limit": limit}
            )
        ).all()

    async def update_claimed(self, message_id: str, held_by: str, /, **values: Any) -> bool:
        """Change a message only while the claim ``held_by`` (a claim token) holds it: the token
        is the fence, a sender whose claim was taken over changes nothing. True when it did."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                _update_claimed(frozenset(values)),
                {"_message_id": message_id, "_held_by": held_by, **values},
            ),
        )
        return bool(result.rowcount == 1)

    async def update_claimed_staging(
        self, message_id: str, held_by: str, /, outbox: Table, event: dict[str, Any], **values: Any
    ) -> bool:
        """``update_claimed``, and when it changed the message, the outbox row ``event``
        (``shared.outbox.event_row``) staged in the same transaction. One statement on
        PostgreSQL (a data-modifying CTE), two on SQLite (no such CTE there)."""
        if not self.is_postgres:
            if not await self.update_claimed(message_id, held_by, **values):
                return False
            await self.session.execute(insert_into(outbox), event)
        else:
            result = cast(
                CursorResult[Any],
                await self.session.execute(*_staging(message_id, held_by, outbox, event, values)),
            )
            if result.rowcount != 1:
                return False
        wake_after_commit(self.session, outbox.name)
        return True

    async def sms_awaiting_receipt(
        self, *, sent_after: datetime, sent_before: datetime, checked_before: datetime, limit: int
    ) -> Sequence[OutgoingMessage]:
        checked = OutgoingMessage.receipt_checked_at
        return (
            await self.session.scalars(
                select(OutgoingMessage)
                .where(
                    OutgoingMessage.channel == "sms",
                    OutgoingMessage.status == SENT,
                    OutgoingMessage.provider_message_id.is_not(None),
                    OutgoingMessage.sent_at > sent_after,
                    OutgoingMessage.sent_at <= sent_before,
                    or_(checked.is_(None), checked <= checked_before),
                )
                .order_by(OutgoingMessage.sent_at)
                .limit(limit)
            )
        ).all()
