"""SQL of call-backs: an operator's scheduled call-backs, in time order."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, true

from qualify.models import QueuedLead
from shared.db.repository import Repository


class CallbackRepository(Repository):
    async def scheduled_by(self, operator_id: str, limit: int) -> Sequence[QueuedLead]:
        """Open leads with a call-back the operator set, earliest first (past ones included:
        they are still to be made)."""
        return (
            await self.session.scalars(
                select(QueuedLead)
                .where(
                    QueuedLead.callback_by == operator_id,
                    QueuedLead.callback_at.is_not(None),
                    QueuedLead.is_open == true(),
                )
                .order_by(QueuedLead.callback_at, QueuedLead.lead_id)
                .limit(limit)
            )
        ).all()
