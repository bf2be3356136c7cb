"""HTTP API to read one lead: its state, claim, attempts and qualification.

An operator sees the leads of the queue, the ones they hold and the ones they closed; a manager
sees every lead.
"""

from __future__ import annotations

from fastapi import APIRouter

from qualify.attempts.router import attempt_out
from qualify.callbacks.schemas import CallbackOut
from qualify.deps import Operator
from qualify.leads import state
from qualify.leads.access import can_read
from qualify.leads.repository import LeadRepository
from qualify.leads.schemas import (
    ClaimState,
    ContactOut,
    DisqualificationState,
    LeadOut,
    ReopeningState,
)
from qualify.problems import LeadNotFound
from qualify.qualification.schemas import MACHINE, QualificationIn, QualificationOut
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import Forbidden, InvalidRequest

router = APIRouter(prefix="/v1/leads", tags=["leads"], responses=AUTH_PROBLEMS)


@router.get(
    "/{lead_id}",
    response_model=LeadOut,
    summary="The lead, its attempts and its qualification",
    responses=problem_responses(
        Forbidden,
        LeadNotFound,
        InvalidRequest,
        s403="Missing role, or another operator's lead (a manager may read it)",
    ),
)
async def get_lead(lead_id: str, session: SessionDep, principal: Operator, now: NowDep) -> LeadOut:
    repository = LeadRepository.from_session(session)
    lead = await repository.get(lead_id)
    if lead is None:
        raise LeadNotFound()
    if not can_read(lead, principal, now):
        raise Forbidden("This lead is another operator's; a manager may read it.")
    attempts = await repository.attempts(lead_id)
    qualification = await repository.qualification(lead_id)
    claim = (
        ClaimState(
            operator_id=lead.claimed_by,
            claimed_at=lead.claimed_at,
            expires_at=lead.claim_expires_at,
        )
        if state.has_active_claim(lead, now)
        and lead.claimed_by is not None
        and lead.claimed_at is not None
        and lead.claim_expires_at is not None
        else None
    )
    return LeadOut(
        lead_id=lead.lead_id,
        status=lead.status,
        kind=lead.kind,
        source=lead.source,
        path=lead.routing_path,
        site=lead.site,
        received_at=lead.received_at,
        due_at=lead.due_at,
        overdue=lead.is_overdue(now),
        available_at=lead.available_at,
        callback=CallbackOut.of(lead) if lead.callback_at is not None else None,
        contact=ContactOut(
            full_name=lead.full_name,
            phone=lead.phone,
            email=lead.email,
            relay_email=lead.relay_email,
        ),
        unread_replies=lead.unread_replies,
        ad_ref=lead.ad_ref,
        message=lead.message,
        claim=claim,
        attempts=[attempt_out(attempt) for attempt in attempts],
        first_attempt_at=lead.first_attempt_at,
        unanswered_attempts=lead.unanswered_count,
        handled_by=lead.handled_by,
        closed_at=lead.closed_at,
        qualification=(
            QualificationOut(
                lead_id=qualification.lead_id,
                operator_id=qualification.operator_id,
                qualified_at=qualification.qualified_at,
                qualification=QualificationIn.model_validate(
                    qualification.data,
                    context=MACHINE if lead.routing_path == "direct" else None,
                ),
            )
            if qualification is not None
            else None
        ),
        disqualification=(
            DisqualificationState(
                reason=lead.disqualification_reason,
                duplicate_of=lead.duplicate_of,
                note=lead.disqualification_note,
            )
            if lead.disqualification_reason is not None
            else None
        ),
        reopening=(
            ReopeningState(
                reopened_at=lead.reopened_at,
                operator_id=lead.reopened_by,
                reason=lead.reopen_reason,
            )
            if lead.reopened_at is not None
            and lead.reopened_by is not None
            and lead.reopen_reason is not None
            else None
        ),
    )
