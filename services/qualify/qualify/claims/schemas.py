"""Bodies of the claims API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from qualify.models import QueuedLead
from qualify.queue.repository import HeldClaim


class ClaimOut(BaseModel):
    lead_id: str
    operator_id: str
    claimed_at: datetime
    expires_at: datetime

    @classmethod
    def held(cls, claim: HeldClaim) -> ClaimOut:
        return cls(
            lead_id=claim.lead_id,
            operator_id=claim.operator_id,
            claimed_at=claim.claimed_at,
            expires_at=claim.expires_at,
        )

    @classmethod
    def of(cls, lead: QueuedLead) -> ClaimOut:
        assert lead.claimed_by is not None
        assert lead.claimed_at is not None
        assert lead.claim_expires_at is not None
        return cls(
            lead_id=lead.lead_id,
            operator_id=lead.claimed_by,
            claimed_at=lead.claimed_at,
            expires_at=lead.claim_expires_at,
        )
