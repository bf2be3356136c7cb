"""HTTP API of contact attempts."""

from __future__ import annotations

from fastapi import APIRouter, status

from qualify.attempts import service
from qualify.attempts.schemas import AttemptIn, AttemptOut, AttemptRecorded
from qualify.deps import LEAD_PROBLEMS, PolicyDep, Worker
from qualify.models import ContactAttempt
from shared.api import SessionDep

router = APIRouter(prefix="/v1/leads/{lead_id}/attempts", tags=["attempts"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AttemptRecorded,
    summary="Record a call, SMS or e-mail (the contact rules are enforced: 409 with a reason)",
    responses=LEAD_PROBLEMS,
)
async def post_attempt(
    lead_id: str, body: AttemptIn, session: SessionDep, principal: Worker, policy: PolicyDep
) -> AttemptRecorded:
    recorded = await service.record(session, policy, principal, lead_id, body)
    return AttemptRecorded(
        attempt=attempt_out(recorded.attempt),
        lead_status=recorded.lead.status,
        auto_disqualified=recorded.auto_disqualified,
    )


def attempt_out(attempt: ContactAttempt) -> AttemptOut:
    return AttemptOut(
        id=attempt.id,
        lead_id=attempt.lead_id,
        operator_id=attempt.operator_id,
        channel=attempt.channel,
        outcome=attempt.outcome,
        note=attempt.note,
        attempted_at=attempt.attempted_at,
        recorded_at=attempt.recorded_at,
        exemption=attempt.exemption,
    )
