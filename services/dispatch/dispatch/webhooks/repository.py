"""SQL of webhook deliveries, their attempts (the delivery log) and managers' alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    String,
    Table,
    Update,
    and_,
    bindparam,
    column,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from dispatch.models import ManagerAlert, Seller, WebhookAttempt, WebhookDelivery
from dispatch.webhooks.schemas import DeliveryStatus
from shared.db.prepared import Prepared
from shared.db.repository import Repository
from shared.db.session import SessionFactory, autocommit_connection, single_statement
from shared.db.types import UtcDateTime


class WebhookRepository(Repository):
    def add(self, row: WebhookDelivery | WebhookAttempt | ManagerAlert) -> None:
        """A new row, written with the caller's next flush or commit."""
        self.session.add(row)

    async def insert_delivery(self, row: dict[str, Any]) -> None:
        """A new message, written at once (every column of ``webhook_delivery`` in ``row``)."""
        with self.session.no_autoflush:  # pending changes wait for the caller's next flush
            await self.session.execute(_INSERT_DELIVERY, row)

    async def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def deliveries(
        self, *, seller_id: str | None, status: DeliveryStatus | None, limit: int
    ) -> Sequence[WebhookDelivery]:
        """The delivery log, newest first."""
        query = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(limit)
        if seller_id is not None:
            query = query.where(WebhookDelivery.seller_id == seller_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        return (await self.session.scalars(query)).all()

    async def attempts(self, delivery_id: str) -> Sequence[WebhookAttempt]:
        return (
            await self.session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.attempt)
            )
        ).all()

    async def undelivered_between(
        self, seller_id: str, *, since: datetime, until: datetime | None
    ) -> Sequence[WebhookDelivery]:
        """The seller's failed or held messages created since ``since`` (until ``until``)."""
        query = select(WebhookDelivery).where(
            WebhookDelivery.seller_id == seller_id,
            WebhookDelivery.status.in_(("failed", "held")),
            WebhookDelivery.created_at >= since,
        )
        if until is not None:
            query = query.where(WebhookDelivery.created_at < until)
        return (await self.session.scalars(query)).all()

    async def seller_feed(
        self,
        seller_id: str,
        *,
        after: tuple[datetime, str] | None,
        until: datetime,
        limit: int,
    ) -> Sequence[WebhookDelivery]:
        """The seller's messages written after the keyset ``after`` (time, id) and by
        ``until``, in the order written (``ix_webhook_delivery_seller``)."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.seller_id == seller_id, WebhookDelivery.created_at <= until)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            .limit(limit)
        )
        if after is not None:
            written_at, message_id = after
            query = query.where(
                or_(
                    WebhookDelivery.created_at > written_at,
                    and_(WebhookDelivery.created_at == written_at, WebhookDelivery.id > message_id),
                )
            )
        return (await self.session.scalars(query)).all()

    async def load(
        self, delivery_ids: Sequence[str], seller_ids: Sequence[str]
    ) -> tuple[Sequence[WebhookDelivery], Sequence[Seller]]:
        """Bring these deliveries and sellers into the session at once (two statements): the
        ``delivery``/``seller`` look-ups of a pass then find them without a round trip each,
        as long as the caller holds what this returns (the session's identity map only keeps
        objects that something else references)."""
        deliveries: Sequence[WebhookDelivery] = ()
        if delivery_ids:
            deliveries = (
                await self.session.scalars(_DELIVERIES_IN, {"ids": sorted(set(delivery_ids))})
            ).all()
        return deliveries, await self.sellers(seller_ids)

    async def sellers(self, seller_ids: Sequence[str]) -> Sequence[Seller]:
        """Bring these sellers into the session at once (one statement)."""
        if not seller_ids:
            return ()
        return (await self.session.scalars(_SELLERS_IN, {"ids": sorted(set(seller_ids))})).all()

    async def record_delivered(
        self, results: Sequence[Delivered], now: datetime, *, next_due: bool
    ) -> DeliveredPass:
        """Record attempts that were delivered, without ORM objects: the deliveries still there
        updated (one erased meanwhile is not recorded), an attempt row each, the failure count
        of their sellers reset (when it was not zero already); with ``next_due``, when the
        earliest pending delivery is due after them. PostgreSQL: one statement (CTEs); SQLite:
        one UPDATE per status code, one INSERT, one UPDATE, and the due time's select."""
        if self.session.get_bind().dialect.name == "postgresql":
            return await self._record_delivered_at_once(results, now)
        recorded = await self._record_delivered_by_code(results, now)
        return DeliveredPass(recorded, await self.next_due() if next_due else None)

    async def _record_delivered_at_once(
        self, results: Sequence[Delivered], now: datetime
    ) -> DeliveredPass:
        of_id = {result.delivery_id: result for result in results}
        rows = await self.session.execute(_RECORD_DELIVERED_PG, _delivered_params(of_id, now))
        recorded, due = _delivered_rows(of_id, rows)
        return DeliveredPass(recorded, due)

    async def _record_delivered_by_code(
        self, results: Sequence[Delivered], now: datetime
    ) -> list[tuple[Delivered, str]]:
        by_code: dict[int, dict[str, Delivered]] = {}
        for result in results:
            by_code.setdefault(result.status_code, {})[result.delivery_id] = result
        recorded: list[tuple[Delivered, str]] = []
        attempts: list[dict[str, Any]] = []
        for code, of_id in by_code.items():
            rows = await self.session.execute(
                _DELIVERED, {"ids": sorted(of_id), "code": code, "now": now}
            )
            for delivery_id, seller_id, attempt in rows:
                result = of_id[delivery_id]
                recorded.append((result, seller_id))
                attempts.append(
                    {
                        "delivery_id": delivery_id,
                        "attempt": attempt,
                        "attempted_at": now,
                        "status_code": code,
                        "outcome": "delivered",
                        "latency_ms": result.latency_ms,
                    }
                )
        if attempts:
            await self.session.execute(_INSERT_ATTEMPT, attempts)
            sellers = sorted({seller_id for _, seller_id in recorded})
            await self.session.execute(_SELLERS_REACHED, {"ids": sellers})
        return recorded

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (None: nothing pending), counting this
        session's changes not yet flushed."""
        await self.session.flush()
        due: datetime | None = await self.session.scalar(_NEXT_DUE)
        return due

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claimed]:
        """The oldest pending deliveries due by ``now`` (up to ``limit``), leased until
        ``lease_until``, with their seller's endpoint: one ``UPDATE … FROM seller … RETURNING``,
        no ORM object. On PostgreSQL the due ones are locked ``FOR UPDATE SKIP LOCKED``, so
        replicas claim different ones; the lease keeps them from other passes once this
        transaction ends."""
        postgresql = self.session.get_bind().dialect.name == "postgresql"
        rows = await self.session.execute(
            _claim_statement(postgresql, limit), {"now": now, "lease_until": lease_until}
        )
        return [Claimed(*row) for row in rows]

    async def claim_due(self, now: datetime, limit: int) -> Sequence[WebhookDelivery]:
        """Pending deliveries due by ``now``, oldest first, locked for this transaction; on
        PostgreSQL ``SKIP LOCKED`` lets replicas claim different ones."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        return (await self.session.scalars(query)).all()


async def record_delivered_alone(
    factory: SessionFactory, results: Sequence[Delivered], now: datetime, *, next_due: bool
) -> DeliveredPass:
    """``WebhookRepository.record_delivered`` as a unit of work of its own. PostgreSQL: the one
    statement in autocommit on a pooled connection, as driver SQL compiled once, without an ORM
    session (a pass's record is its only statement: no session, no ORM execution, no compiled
    cache look-up or parameters built by name); elsewhere a ``single_statement`` unit of
    work."""
    engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        async with single_statement(factory) as session:
            return await WebhookRepository(session).record_delivered(
                results, now, next_due=next_due
            )
    async with autocommit_connection(engine) as connection:
        return await _record_delivered_on(connection, results, now)


async def _record_delivered_on(
    connection: AsyncConnection, results: Sequence[Delivered], now: datetime
) -> DeliveredPass:
    of_id = {result.delivery_id: result for result in results}
    dialect = connection.dialect
    prepared = _record_delivered_prepared(dialect)
    rows = await prepared.execute(connection, prepared.arguments_of(_delivered_params(of_id, now)))
    recorded, due = _delivered_rows(of_id, rows)
    # The driver's value, typed as a compiled execution's would be (``UtcDateTime``).
    return DeliveredPass(recorded, _DUE_TYPE.process_result_value(due, dialect))


def _delivered_params(of_id: dict[str, Delivered], now: datetime) -> dict[str, Any]:
    """The record's parameters: the deliveries by id, their codes and latencies, the time."""
    ids = sorted(of_id)
    return {
        "ids": ids,
        "codes": [of_id[delivery_id].status_code for delivery_id in ids],
        "latencies": [of_id[delivery_id].latency_ms for delivery_id in ids],
        "now": now,
    }


def _delivered_rows(
    of_id: dict[str, Delivered], rows: Iterable[Any]
) -> tuple[list[tuple[Delivered, str]], datetime | None]:
    """The deliveries the record wrote (with their sellers) and when the next one is due."""
    recorded: list[tuple[Delivered, str]] = []
    due: datetime | None = None
    for delivery_id, seller_id, next_due in rows:
        due = next_due
        if delivery_id is not None:
            recorded.append((of_id[delivery_id], seller_id))
    return recorded, due


class Delivered(NamedTuple):
    """An attempt a seller's tool answered with a 2xx."""

    delivery_id: str
    status_code: int
    latency_ms: int


class DeliveredPass(NamedTuple):
    """The delivered attempts recorded (each with its seller's id), and when the earliest
    pending delivery is due after them (None: none pending, or not asked for)."""

    recorded: list[tuple[Delivered, str]]
    next_due: datetime | None


class Claimed(NamedTuple):
    """A claimed delivery and its seller's endpoint, as the sender needs them."""

    id: str
    seller_id: str
    event_type: str
    body: str
    traceparent: str | None
    webhook_url: str | None
    webhook_secret: str | None
    webhook_disabled_at: datetime | None


# The statements of a sender's pass, built once (they run for every message).
_deliveries = cast(Table, WebhookDelivery.__table__)
_sellers = cast(Table, Seller.__table__)
_DELIVERIES_IN = select(WebhookDelivery).where(
    WebhookDelivery.id.in_(bindparam("ids", expanding=True))
)
_SELLERS_IN = select(Seller).where(Seller.id.in_(bindparam("ids", expanding=True)))
_attempts = cast(Table, WebhookAttempt.__table__)
_INSERT_DELIVERY = insert(_deliveries)
_INSERT_ATTEMPT = insert(_attempts)
_DELIVERED = (
    update(_deliveries)
    .where(_deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        attempts=_deliveries.c.attempts + 1,
        status="delivered",
        last_status_code=bindparam("code"),
        last_outcome="delivered",
        delivered_at=bindparam("now"),
        next_attempt_at=None,
    )
    .returning(_deliveries.c.id, _deliveries.c.seller_id, _deliveries.c.attempts)
)
_SELLERS_REACHED = (
    update(_sellers)
    .where(_sellers.c.id.in_(bindparam("ids", expanding=True)), _sellers.c.webhook_failures != 0)
    .values(webhook_failures=0)
)
# PostgreSQL records a delivered pass in one round trip: the deliveries' UPDATE, the attempts'
# INSERT and the sellers' reset as CTEs, and the next due time read beside them (the main query
# sees the rows as they were before the CTEs: the deliveries just recorded are left out; the LEFT
# JOIN keeps the due time when every delivery was erased meanwhile).
_RECORD_DELIVERED_PG = text(
    "WITH result AS (SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:codes AS INTEGER[]),"
    " CAST(:latencies AS INTEGER[])) AS r(delivery_id, status_code, latency_ms)),"
    " delivered AS (UPDATE webhook_delivery AS d SET attempts = d.attempts + 1,"
    " status = 'delivered', last_status_code = result.status_code, last_outcome = 'delivered',"
    " delivered_at = CAST(:now AS TIMESTAMPTZ), next_attempt_at = NULL"
    " FROM result WHERE d.id = result.delivery_id"
    " RETURNING d.id, d.seller_id, d.attempts, result.status_code, result.latency_ms),"
    " attempt AS (INSERT INTO webhook_attempt"
    " (delivery_id, attempt, attempted_at, status_code, outcome, latency_ms)"
    " SELECT id, attempts, CAST(:now AS TIMESTAMPTZ), status_code, 'delivered', latency_ms"
    " FROM delivered),"
    " reached AS (UPDATE seller SET webhook_failures = 0"
    " WHERE id IN (SELECT seller_id FROM delivered) AND webhook_failures != 0)"
    " SELECT delivered.id, delivered.seller_id, due.next_due"
    " FROM (SELECT min(next_attempt_at) AS next_due FROM webhook_delivery"
    " WHERE status = 'pending' AND id != ALL(CAST(:ids AS VARCHAR[]))) AS due"
    " LEFT JOIN delivered ON true"
).columns(column("id", String()), column("seller_id", String()), column("next_due", UtcDateTime()))
_DUE_TYPE = UtcDateTime()


@cache
def _record_delivered_prepared(dialect: Dialect) -> Prepared:
    """``_RECORD_DELIVERED_PG`` compiled once to the driver's SQL (it runs for every pass)."""
    return Prepared.compile(_RECORD_DELIVERED_PG, dialect)


_NEXT_DUE = select(func.min(_deliveries.c.next_attempt_at)).where(_deliveries.c.status == "pending")


@cache
def _claim_statement(postgresql: bool, limit: int) -> Update:
    due = (
        select(_deliveries.c.id)
        .where(
            _deliveries.c.status == "pending",
            _deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
        .limit(limit)
    )
    lease = (
        update(_deliveries)
        .where(_deliveries.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=bindparam("lease_until"))
    )
    endpoint: tuple[ColumnElement[Any], ...]
    if postgresql:
        due = due.with_for_update(skip_locked=True)
        lease = (
            update(_deliveries)
            .where(_deliveries.c.id.in_(due.scalar_subquery()))
            .where(_sellers.c.id == _deliveries.c.seller_id)  # UPDATE … FROM seller
            .values(next_attempt_at=bindparam("lease_until"))
        )
        endpoint = (
            _sellers.c.webhook_url,
            _sellers.c.webhook_secret,
            _sellers.c.webhook_disabled_at,
        )
    else:  # SQLite's RETURNING only names the updated table: the endpoint by subqueries
        endpoint = tuple(
            select(column).where(_sellers.c.id == _deliveries.c.seller_id).scalar_subquery()
            for column in (
                _sellers.c.webhook_url,
                _sellers.c.webhook_secret,
                _sellers.c.webhook_disabled_at,
            )
        )
    return lease.returning(
        _deliveries.c.id,
        _deliveries.c.seller_id,
        _deliveries.c.event_type,
        _deliveries.c.body,
        _deliveries.c.traceparent,
        *endpoint,
    )
