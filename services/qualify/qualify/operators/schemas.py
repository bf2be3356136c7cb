"""Bodies of the operators' figures API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OperatorStats(BaseModel):
    operator_id: str
    day: str
    handled_today: int
    qualified_today: int
    disqualified_today: int
    attempts_today: int
    claimed_now: int
    overdue_claimed_now: int = Field(
        description="Leads the operator holds whose next contact is overdue."
    )
    callbacks_scheduled: int = Field(description="Call-backs the operator set, still to make.")
    callbacks_due: int = Field(description="Of those, the ones whose time came.")
    first_attempts_today: int
    avg_minutes_to_first_attempt: float | None
    avg_business_minutes_to_first_attempt: float | None
