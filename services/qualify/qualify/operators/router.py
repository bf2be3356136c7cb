"""HTTP API of operators' figures: handled today, average time to first attempt.

"Today" is the current day in the call centre's time zone. Times to first attempt are given in
wall-clock and in business minutes (the call centre's calendar).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.deps import PROBLEMS, Manager, PolicyDep, Worker
from qualify.leads.state import DISQUALIFIED, QUALIFIED
from qualify.models import ContactAttempt, QueuedLead
from qualify.policy import Policy
from shared.api import SessionDep

router = APIRouter(prefix="/v1/operators", tags=["operators"])


class OperatorStats(BaseModel):
    operator_id: str
    day: str
    handled_today: int
    qualified_today: int
    disqualified_today: int
    attempts_today: int
    claimed_now: int
    first_attempts_today: int
    avg_minutes_to_first_attempt: float | None
    avg_business_minutes_to_first_attempt: float | None


async def stats_of(session: AsyncSession, policy: Policy, operator_id: str) -> OperatorStats:
    now = policy.now()
    zone = policy.calendar.zone
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    closed_rows = (
        await session.execute(
            select(QueuedLead.status, func.count())
            .where(
                QueuedLead.handled_by == operator_id,
                QueuedLead.closed_at >= start,
                QueuedLead.closed_at < end,
            )
            .group_by(QueuedLead.status)
        )
    ).all()
    closed: dict[str, int] = {row[0]: row[1] for row in closed_rows}
    attempts = await session.scalar(
        select(func.count()).where(
            ContactAttempt.operator_id == operator_id,
            ContactAttempt.attempted_at >= start,
            ContactAttempt.attempted_at < end,
        )
    )
    claimed = await session.scalar(
        select(func.count()).where(
            QueuedLead.claimed_by == operator_id,
            QueuedLead.is_open.is_(True),
            QueuedLead.claim_expires_at > now,
        )
    )
    firsts = (
        await session.execute(
            select(QueuedLead.received_at, QueuedLead.first_attempt_at).where(
                QueuedLead.first_attempt_by == operator_id,
                QueuedLead.first_attempt_at >= start,
                QueuedLead.first_attempt_at < end,
            )
        )
    ).all()
    wall = [(row.first_attempt_at - row.received_at).total_seconds() / 60 for row in firsts]
    business = [
        policy.calendar.business_minutes_between(row.received_at, row.first_attempt_at)
        for row in firsts
    ]
    qualified = int(closed.get(QUALIFIED, 0))
    disqualified = int(closed.get(DISQUALIFIED, 0))
    return OperatorStats(
        operator_id=operator_id,
        day=today.isoformat(),
        handled_today=qualified + disqualified,
        qualified_today=qualified,
        disqualified_today=disqualified,
        attempts_today=int(attempts or 0),
        claimed_now=int(claimed or 0),
        first_attempts_today=len(firsts),
        avg_minutes_to_first_attempt=round(sum(wall) / len(wall), 1) if wall else None,
        avg_business_minutes_to_first_attempt=(
            round(sum(business) / len(business), 1) if business else None
        ),
    )


@router.get(
    "/me/stats",
    response_model=OperatorStats,
    summary="The caller's figures of today",
    responses=PROBLEMS,
)
async def my_stats(session: SessionDep, principal: Worker, policy: PolicyDep) -> OperatorStats:
    return await stats_of(session, policy, principal.token_id)


@router.get(
    "/{operator_id}/stats",
    response_model=OperatorStats,
    summary="One operator's figures of today (managers)",
    responses=PROBLEMS,
)
async def operator_stats(
    operator_id: Annotated[str, Path(min_length=1, max_length=36)],
    session: SessionDep,
    _: Manager,
    policy: PolicyDep,
) -> OperatorStats:
    return await stats_of(session, policy, operator_id)
