"""The delivery log as managers see it: states, codes, latencies; never the body."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.instants import Instant

# pending: to send (now or at ``next_attempt_at``); delivered: a 2xx; failed: attempts
# exhausted, 410 Gone or the endpoint disabled (a replay makes it pending again); held: never
# sent, the seller had no usable endpoint when it was written (disabled, or none): the seller's
# feed shows it, and ``recover`` sends it once the endpoint is enabled.
DeliveryStatus = Literal["pending", "delivered", "failed", "held"]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seller_id: str
    lead_id: str | None
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_outcome: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    attempted_at: datetime
    status_code: int | None
    outcome: str
    latency_ms: int


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant
    until: Instant | None = None


class RecoverOut(BaseModel):
    seller_id: str
    replayed: int
