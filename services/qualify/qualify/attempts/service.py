"""Recording an attempt: state and claim checks, the legal rules, the unreachable rule, and the
lead's next contact (``leads/schedule.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.attempts.schemas import AttemptIn
from qualify.leads import schedule, state
from qualify.leads.repository import LeadRepository
from qualify.models import ContactAttempt, QueuedLead
from qualify.policy import Policy
from qualify.problems import ContactNotAllowed, MissingContactDetail
from shared.auth import Principal
from shared.contact_rules import RequestedSlot, allowed, rules_for_phone
from shared.errors import InvalidRequest
from shared.events.payloads import LeadContactAttemptedV1, LeadDisqualifiedV1
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

UNANSWERED = schedule.UNANSWERED
_FUTURE_TOLERANCE = timedelta(minutes=2)


@dataclass(frozen=True)
class Recorded:
    attempt: ContactAttempt
    lead: QueuedLead
    auto_disqualified: bool


def _invalid_time(message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid or missing fields: attempted_at ({message})",
        errors=[
            {
                "field": "attempted_at",
                "location": "body",
                "type": "invalid_time",
                "message": message,
            }
        ],
    )


async def record(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: AttemptIn,
    *,
    policy: Policy,
    outbox: Outbox,
    now: datetime,
) -> Recorded:
    repository = LeadRepository.from_session(session)
    lead = await repository.get_for_update(lead_id)
    state.require_holder(lead, principal.token_id, now)

    attempted_at = body.attempted_at or now
    if attempted_at > now + _FUTURE_TOLERANCE:
        raise _invalid_time("must not be in the future")
    if attempted_at < now - timedelta(minutes=policy.settings.attempt_max_backdate_minutes):
        raise _invalid_time("too far in the past")
    if attempted_at < lead.received_at:
        raise _invalid_time("must not precede the lead's receipt")

    if body.channel in ("phone", "sms") and not lead.phone:
        raise MissingContactDetail("The lead has no phone number.", channel=body.channel)
    if body.channel == "email" and not (lead.email or lead.relay_email):
        raise MissingContactDetail("The lead has no e-mail address.", channel=body.channel)

    exemption: str | None = None
    if body.channel == "phone":
        assert lead.phone is not None
        await repository.lock_consumer(lead.phone)
        calls, refusals = await repository.consumer_phone_history(
            lead.phone, attempted_at - policy.calling.period
        )
        request = body.consumer_request
        decision = allowed(
            attempted_at,
            rules=rules_for_phone(policy.calling, lead.phone),
            previous_calls=calls,
            refusals=refusals,
            own_request_at=lead.received_at if lead.kind == "enquiry" else None,
            requested_slot=(
                RequestedSlot(request.slot_start, request.slot_end, request.requested_at)
                if request is not None
                else None
            ),
        )
        if not decision.allowed:
            assert decision.reason is not None
            log.info("attempt.refused", lead_id=lead.lead_id, reason=decision.reason.value)
            raise ContactNotAllowed(
                decision.message,
                reason=decision.reason.value,
                next_allowed_at=_iso(decision.next_allowed_at),
            )
        exemption = decision.exemption.value if decision.exemption else None

    attempt = ContactAttempt(
        id=str(uuid.uuid4()),
        lead_id=lead.lead_id,
        operator_id=principal.token_id,
        operator_name=principal.name,
        channel=body.channel,
        outcome=body.outcome,
        note=body.note,
        attempted_at=attempted_at,
        recorded_at=now,
        exemption=exemption,
        consumer_request=(
            body.consumer_request.model_dump(mode="json")
            if body.consumer_request is not None and exemption is not None
            else None
        ),
    )
    repository.add_attempt(attempt)
    lead.status = state.CONTACTING
    lead.attempt_count += 1
    if lead.first_attempt_at is None or attempted_at < lead.first_attempt_at:
        lead.first_attempt_at = attempted_at
        lead.first_attempt_by = principal.token_id
    if body.outcome in UNANSWERED:
        lead.unanswered_count += 1
    # A late record of an older attempt does not move the schedule the newer one set.
    latest = lead.last_attempt_at is None or attempted_at >= lead.last_attempt_at
    if latest:
        lead.last_attempt_at = attempted_at
    await outbox.stage(
        session,
        "lead.contact-attempted.v1",
        lead.lead_id,
        LeadContactAttemptedV1(
            lead_id=lead.lead_id,
            attempt_id=attempt.id,
            operator_id=principal.token_id,
            channel=body.channel,
            outcome=body.outcome,
            attempted_at=attempted_at,
            exemption=exemption,
        ),
    )

    auto = lead.unanswered_count >= policy.settings.unreachable_after_attempts
    if auto:
        await disqualify_unreachable(session, outbox, lead, principal.token_id, now)
    elif latest:
        await _reschedule(repository, policy, lead, body, attempted_at)
    await session.flush()
    log.info(
        "attempt.recorded",
        lead_id=lead.lead_id,
        channel=body.channel,
        outcome=body.outcome,
        auto_disqualified=auto,
    )
    return Recorded(attempt, lead, auto)


async def _reschedule(
    repository: LeadRepository,
    policy: Policy,
    lead: QueuedLead,
    body: AttemptIn,
    attempted_at: datetime,
) -> None:
    """The lead's next contact after this attempt. A call fulfils a scheduled call-back; an SMS
    or e-mail before it leaves it as it is (the prospect still expects the call)."""
    if body.channel == "phone":
        state.clear_callback(lead)
    elif lead.callback_at is not None:
        return
    calls: list[datetime] = []
    refusals: list[datetime] = []
    if lead.phone:
        calls, refusals = await repository.consumer_phone_history(
            lead.phone, attempted_at - policy.calling.period
        )
    schedule.set_next_contact(
        lead,
        schedule.after_attempt(
            policy, lead, body.outcome, attempted_at, calls=calls, refusals=refusals
        ),
    )


async def disqualify_unreachable(
    session: AsyncSession, outbox: Outbox, lead: QueuedLead, operator_id: str, now: datetime
) -> None:
    state.close(lead, state.DISQUALIFIED, by=operator_id, at=now)
    lead.disqualification_reason = "unreachable"
    await outbox.stage(
        session,
        "lead.disqualified.v1",
        lead.lead_id,
        LeadDisqualifiedV1(
            lead_id=lead.lead_id,
            reason="unreachable",
            disqualified_at=now,
            operator_id=operator_id,
            automatic=True,
        ),
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
