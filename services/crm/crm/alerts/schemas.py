"""Bodies of the alerts feed: ids, instants and reasons, as managers see them in the SLA API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

AlertKind = Literal["lead_at_risk", "webhook_disabled"]


class AlertOut(BaseModel):
    id: str = Field(description="Stable id of the alert: kind, stage and lead, or the event id.")
    kind: AlertKind
    at: datetime = Field(
        description="lead_at_risk: when the stage passed its warning share; webhook_disabled: "
        "when dispatch disabled the endpoint."
    )
    lead_id: str | None = None
    stage: str | None = Field(default=None, description="The running SLA stage at risk.")
    target_minutes: float | None = None
    started_at: datetime | None = None
    due_at: datetime | None = Field(default=None, description="When the stage breaches.")
    source: str | None = None
    site: str | None = None
    seller_id: str | None = None
    operator_id: str | None = None
    reason: str | None = Field(default=None, description="gone or too_many_failures.")
    consecutive_failures: int | None = None


class AlertPage(BaseModel):
    items: list[AlertOut] = Field(description="Oldest first: the most urgent leads lead.")
    next_cursor: str | None
    generated_at: datetime
