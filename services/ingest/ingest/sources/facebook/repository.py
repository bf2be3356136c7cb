"""SQL of the pending Graph API fetches of Lead Ads notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from ingest.models import FacebookFetch
from ingest.sources.facebook.notifications import LeadgenRef
from shared.db.repository import Repository
from shared.db.session import wake_after_commit


class FacebookFetchRepository(Repository):
    async def stage(self, ref: LeadgenRef, *, raw_input_id: str, now: datetime) -> bool:
        """A fetch due at once; False when this leadgen id is already known (a webhook retry)."""
        known = await self.session.scalar(
            select(FacebookFetch.id).where(FacebookFetch.leadgen_id == ref.leadgen_id)
        )
        if known is not None:
            return False
        self.session.add(
            FacebookFetch(
                id=str(uuid.uuid4()),
                leadgen_id=ref.leadgen_id,
                page_id=ref.page_id,
                form_id=ref.form_id,
                ad_id=ref.ad_id,
                raw_input_id=raw_input_id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await self.session.flush()
        wake_after_commit(self.session, FacebookFetch.__tablename__)  # the fetcher, once committed
        return True

    async def get(self, fetch_id: str) -> FacebookFetch | None:
        return await self.session.get(FacebookFetch, fetch_id)

    async def due_ids(self, *, now: datetime, limit: int) -> list[str]:
        """Pending fetches whose next attempt is due, the longest waiting first."""
        return list(
            await self.session.scalars(
                select(FacebookFetch.id)
                .where(FacebookFetch.status == "pending", FacebookFetch.next_attempt_at <= now)
                .order_by(FacebookFetch.next_attempt_at)
                .limit(limit)
            )
        )

    async def claim(self, fetch_id: str) -> FacebookFetch | None:
        """The fetch if still pending, locked for this transaction; None when it is done or
        another replica holds it (PostgreSQL: ``SKIP LOCKED``)."""
        statement = select(FacebookFetch).where(
            FacebookFetch.id == fetch_id, FacebookFetch.status == "pending"
        )
        if self.session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return await self.session.scalar(statement)
