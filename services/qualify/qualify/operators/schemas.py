"""Bodies of the operators' figures API."""

from __future__ import annotations

from pydantic import BaseModel


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
