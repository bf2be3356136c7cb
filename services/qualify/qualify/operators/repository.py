"""SQL of operators' figures: counts over one operator's leads and attempts in a time window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from qualify.leads.state import LeadStatus
from qualify.models import ContactAttempt, QueuedLead
from shared.db.repository import Repository


class OperatorStatsRepository(Repository):
    async def closed_by_status(
        self, operator_id: str, start: datetime, end: datetime
    ) -> dict[LeadStatus, int]:
        """How many leads the operator closed in [start, end), by final status."""
        rows = (
            await self.session.execute(
                select(QueuedLead.status, func.count())
                .where(
                    QueuedLead.handled_by == operator_id,
                    QueuedLead.closed_at >= start,
                    QueuedLead.closed_at < end,
                )
                .group_by(QueuedLead.status)
            )
        ).all()
        return {row[0]: row[1] for row in rows}

    async def attempts(self, operator_id: str, start: datetime, end: datetime) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                ContactAttempt.operator_id == operator_id,
                ContactAttempt.attempted_at >= start,
                ContactAttempt.attempted_at < end,
            )
        )
        return int(count or 0)

    async def claims_held(self, operator_id: str, now: datetime) -> int:
        """Open leads under the operator's unexpired claim."""
        count = await self.session.scalar(
            select(func.count()).where(
                QueuedLead.claimed_by == operator_id,
                QueuedLead.is_open.is_(True),
                QueuedLead.claim_expires_at > now,
            )
        )
        return int(count or 0)

    async def first_attempts(
        self, operator_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """(received_at, first_attempt_at) of the leads whose first attempt the operator made in
        [start, end)."""
        rows = (
            await self.session.execute(
                select(QueuedLead.received_at, QueuedLead.first_attempt_at).where(
                    QueuedLead.first_attempt_by == operator_id,
                    QueuedLead.first_attempt_at >= start,
                    QueuedLead.first_attempt_at < end,
                )
            )
        ).all()
        return [
            (row.received_at, row.first_attempt_at)
            for row in rows
            if row.first_attempt_at is not None
        ]

    async def overdue_held(self, operator_id: str, now: datetime) -> int:
        """Open leads under the operator's unexpired claim whose next contact is overdue."""
        count = await self.session.scalar(
            select(func.count()).where(
                QueuedLead.claimed_by == operator_id,
                QueuedLead.claim_expires_at > now,
                QueuedLead.is_overdue(now),
            )
        )
        return int(count or 0)

    async def callbacks(self, operator_id: str, now: datetime) -> tuple[int, int]:
        """(call-backs the operator set on open leads, those of them whose time came)."""
        row = (
            await self.session.execute(
                select(
                    func.count(),
                    func.count().filter(QueuedLead.callback_at <= now),
                ).where(
                    QueuedLead.callback_by == operator_id,
                    QueuedLead.callback_at.is_not(None),
                    QueuedLead.is_open.is_(True),
                )
            )
        ).one()
        return int(row[0] or 0), int(row[1] or 0)
