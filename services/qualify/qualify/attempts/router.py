"""HTTP API of contact attempts."""

from __future__ import annotations

from fastapi import APIRouter, status

from qualify.attempts import service
from qualify.attempts.schemas import AttemptIn, AttemptOut, AttemptRecorded
from qualify.deps import Operator, PolicyDep
from qualify.models import ContactAttempt
from qualify.problems import ContactNotAllowed, LeadNotFound
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(
    prefix="/v1/leads/{lead_id}/attempts", tags=["attempts"], responses=AUTH_PROBLEMS
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AttemptRecorded,
    summary="Record a call, SMS or e-mail (the contact rules are enforced: 409 with a reason)",
    responses=problem_responses(
        LeadNotFound,
        ContactNotAllowed,
        InvalidRequest,
        s409="Illegal in the lead's state, no claim, no contact detail for the channel, or "
        "refused by a contact rule (reason)",
    ),
)
async def post_attempt(
    lead_id: str,
    body: AttemptIn,
    session: SessionDep,
    principal: Operator,
    policy: PolicyDep,
    outbox: OutboxDep,
    now: NowDep,
) -> AttemptRecorded:
    recorded = await service.record(
        session, principal, lead_id, body, policy=policy, outbox=outbox, now=now
    )
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
