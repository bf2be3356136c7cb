"""SQL of the durable timers: schedule, cancel and claim due ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Timer
from dispatch.timers.hint import tell_after_commit
from dispatch.timers.kinds import KINDS, TimerKind
from shared.db.repository import Repository

_INSERT_TIMER = insert(cast(Table, Timer.__table__))


def timer_row(
    kind: TimerKind,
    *,
    lead_id: str,
    due_at: datetime,
    now: datetime,
    assignment_id: str | None = None,
) -> dict[str, Any]:
    """The columns of a new pending timer (its id is the database's)."""
    return {
        "kind": kind,
        "lead_id": lead_id,
        "assignment_id": assignment_id,
        "due_at": due_at,
        "fired_at": None,
        "fired_by": None,
        "outcome": None,
        "created_at": now,
    }


def timer_written(session: AsyncSession, due_at: datetime) -> None:
    """After a timer's row is written in ``session``: once committed, this process's timer loop
    learns when it falls due (``dispatch.timers.hint``; no wake-up when it sleeps until earlier,
    no probe of the database)."""
    tell_after_commit(session, due_at)


class TimerRepository(Repository):
    async def schedule(
        self,
        kind: TimerKind,
        *,
        lead_id: str,
        due_at: datetime,
        now: datetime,
        assignment_id: str | None = None,
    ) -> None:
        """A pending timer, written at once by one prebuilt INSERT (no ORM object: the runner
        reads it when it falls due)."""
        await self.insert(
            timer_row(kind, lead_id=lead_id, due_at=due_at, now=now, assignment_id=assignment_id)
        )
        timer_written(self.session, due_at)

    async def insert(self, row: dict[str, Any]) -> None:
        """A new timer's row (``timer_row``), written at once."""
        with self.session.no_autoflush:  # pending changes wait for the step's next flush
            await self.session.execute(_INSERT_TIMER, row)

    async def cancel(
        self,
        *,
        now: datetime,
        assignment_id: str | None = None,
        lead_id: str | None = None,
        kinds: Sequence[TimerKind] = KINDS,
    ) -> None:
        """Mark pending timers as cancelled (kept for the audit trail, never fired).

        On PostgreSQL a timer being fired right now (claimed, so locked, by a runner) is
        skipped rather than waited for: the runner waits for this step's locks (the assignment
        or the lead) and then finds its timer obsolete. Waiting for it instead would deadlock
        (the runner holds the timer and waits for the assignment, this step the reverse)."""
        pending = select(Timer.id).where(Timer.fired_at.is_(None), Timer.kind.in_(list(kinds)))
        if assignment_id is not None:
            pending = pending.where(Timer.assignment_id == assignment_id)
        if lead_id is not None:
            pending = pending.where(Timer.lead_id == lead_id)
        if self.session.get_bind().dialect.name == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        await self.session.execute(
            update(Timer)
            .where(Timer.id.in_(pending.scalar_subquery()))
            .values(fired_at=now, outcome="cancelled", fired_by=None),
            execution_options={"synchronize_session": False},
        )

    async def claim_one(self, now: datetime) -> Timer | None:
        """The oldest due timer, locked for this transaction. On PostgreSQL ``SKIP LOCKED``
        lets replicas claim different timers; the firing commits with its effects, so a
        timer fires once (a crash rolls both back and another replica fires it)."""
        query = (
            select(Timer)
            .where(Timer.fired_at.is_(None), Timer.due_at <= now)
            .order_by(Timer.due_at, Timer.id)
            .limit(1)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return await self.session.scalar(query)

    async def earliest_due(self) -> datetime | None:
        """When the earliest pending timer falls due (None: no timer pending)."""
        return await self.session.scalar(
            select(func.min(Timer.due_at)).where(Timer.fired_at.is_(None))
        )

    async def get(self, timer_id: int) -> Timer | None:
        return await self.session.get(Timer, timer_id)

    async def next_due(self, assignment_ids: Sequence[str], kind: TimerKind) -> dict[str, datetime]:
        """The earliest pending timer of ``kind`` of each of these assignments."""
        if not assignment_ids:
            return {}
        rows = await self.session.execute(
            select(Timer.assignment_id, func.min(Timer.due_at))
            .where(
                Timer.assignment_id.in_(list(assignment_ids)),
                Timer.kind == kind,
                Timer.fired_at.is_(None),
            )
            .group_by(Timer.assignment_id)
        )
        return {assignment_id: due for assignment_id, due in rows.all() if assignment_id}

    async def pending(self, lead_id: str) -> Sequence[Timer]:
        return (
            await self.session.scalars(
                select(Timer)
                .where(Timer.lead_id == lead_id, Timer.fired_at.is_(None))
                .order_by(Timer.due_at)
            )
        ).all()
