"""Operators' figures of today: handled, attempts, claims held, time to first attempt.

"Today" is the current day in the call centre's time zone. Times to first attempt are given in
wall-clock and in business minutes (the call centre's calendar).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads.state import DISQUALIFIED, QUALIFIED
from qualify.operators.repository import OperatorStatsRepository
from qualify.operators.schemas import OperatorStats
from qualify.policy import Policy


async def stats_of(
    session: AsyncSession, policy: Policy, operator_id: str, now: datetime
) -> OperatorStats:
    repository = OperatorStatsRepository.from_session(session)
    zone = policy.calendar.zone
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    closed = await repository.closed_by_status(operator_id, start, end)
    attempts = await repository.attempts(operator_id, start, end)
    claimed = await repository.claims_held(operator_id, now)
    overdue = await repository.overdue_held(operator_id, now)
    callbacks, callbacks_due = await repository.callbacks(operator_id, now)
    firsts = await repository.first_attempts(operator_id, start, end)
    wall = [(first - received).total_seconds() / 60 for received, first in firsts]
    business = [
        policy.calendar.business_minutes_between(received, first) for received, first in firsts
    ]
    qualified = closed.get(QUALIFIED, 0)
    disqualified = closed.get(DISQUALIFIED, 0)
    return OperatorStats(
        operator_id=operator_id,
        day=today.isoformat(),
        handled_today=qualified + disqualified,
        qualified_today=qualified,
        disqualified_today=disqualified,
        attempts_today=attempts,
        claimed_now=claimed,
        overdue_claimed_now=overdue,
        callbacks_scheduled=callbacks,
        callbacks_due=callbacks_due,
        first_attempts_today=len(firsts),
        avg_minutes_to_first_attempt=round(sum(wall) / len(wall), 1) if wall else None,
        avg_business_minutes_to_first_attempt=(
            round(sum(business) / len(business), 1) if business else None
        ),
    )
