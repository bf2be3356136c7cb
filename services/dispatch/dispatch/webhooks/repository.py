"""SQL of webhook deliveries, their attempts (the delivery log) and managers' alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from dispatch.models import ManagerAlert, Seller, WebhookAttempt, WebhookDelivery
from dispatch.webhooks.schemas import DeliveryStatus
from shared.db.repository import Repository


class WebhookRepository(Repository):
    def add(self, row: WebhookDelivery | WebhookAttempt | ManagerAlert) -> None:
        """A new row, written with the caller's next flush or commit."""
        self.session.add(row)

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

    async def load(self, delivery_ids: Sequence[str], seller_ids: Sequence[str]) -> None:
        """Bring these deliveries and sellers into the session at once (two statements): the
        ``delivery``/``seller`` look-ups of a pass then find them without a round trip each."""
        if delivery_ids:
            await self.session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.id.in_(sorted(set(delivery_ids))))
            )
        await self.sellers(seller_ids)

    async def sellers(self, seller_ids: Sequence[str]) -> None:
        """Bring these sellers into the session at once (one statement)."""
        if seller_ids:
            await self.session.scalars(select(Seller).where(Seller.id.in_(sorted(set(seller_ids)))))

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        return await self.session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == "pending"
            )
        )

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
