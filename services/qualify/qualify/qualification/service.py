"""Qualifying and disqualifying a lead: the caller must hold the claim; the lead closes and its
event is staged in the outbox in the same transaction."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads import state
from qualify.leads.repository import LeadRepository
from qualify.models import Qualification, QueuedLead
from qualify.policy import Policy
from qualify.problems import ContactSuppressed
from qualify.qualification.schemas import DisqualificationIn, QualificationIn
from qualify.suppression.service import is_suppressed
from shared.auth import Principal
from shared.errors import InvalidRequest
from shared.events.payloads import ContactV1, LeadDisqualifiedV1, LeadQualifiedV1
from shared.outbox import Outbox

log = structlog.get_logger(__name__)


async def qualify(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: QualificationIn,
    *,
    policy: Policy,
    outbox: Outbox,
    now: datetime,
) -> Qualification:
    repository = LeadRepository.from_session(session)
    lead = await repository.get_for_update(lead_id)
    state.require_holder(lead, principal.token_id, now)
    marketing = any(consent.granted for consent in body.consents.values())
    key = policy.settings.privacy_hmac_key.get_secret_value().encode()
    if marketing and await is_suppressed(session, lead, key):
        raise ContactSuppressed(
            "This person is on the do-not-contact list: record no marketing consent."
        )
    if body.vehicle_ad_ref is None and lead.ad_ref is not None:
        body = body.model_copy(update={"vehicle_ad_ref": lead.ad_ref})
    state.close(lead, state.QUALIFIED, by=principal.token_id, at=now)
    if body.site is not None:
        lead.site = body.site
    data = body.model_dump(mode="json")
    qualification = Qualification(
        lead_id=lead.lead_id,
        operator_id=principal.token_id,
        operator_name=principal.name,
        qualified_at=now,
        data=data,
    )
    repository.add_qualification(qualification)
    await outbox.stage(
        session,
        "lead.qualified.v1",
        lead.lead_id,
        LeadQualifiedV1.model_validate(
            {
                **data,
                "lead_id": lead.lead_id,
                "source": lead.source,
                "received_at": lead.received_at,
                "qualified_at": now,
                "operator_id": principal.token_id,
                "contact": ContactV1(
                    full_name=lead.full_name, email=lead.email, phone=lead.phone
                ).model_dump(),
            }
        ),
    )
    await session.flush()
    log.info("lead.qualified", lead_id=lead.lead_id, intent=body.intent, channel=body.channel)
    return qualification


async def disqualify(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: DisqualificationIn,
    *,
    outbox: Outbox,
    now: datetime,
) -> QueuedLead:
    repository = LeadRepository.from_session(session)
    lead = await repository.get_for_update(lead_id)
    state.require_holder(lead, principal.token_id, now)
    if body.duplicate_of is not None:
        if body.duplicate_of == lead.lead_id:
            raise _invalid_duplicate("must be another lead")
        if await repository.get(body.duplicate_of) is None:
            raise _invalid_duplicate("no lead has this id")
    state.close(lead, state.DISQUALIFIED, by=principal.token_id, at=now)
    lead.disqualification_reason = body.reason
    lead.duplicate_of = body.duplicate_of
    lead.disqualification_note = body.note
    await outbox.stage(
        session,
        "lead.disqualified.v1",
        lead.lead_id,
        LeadDisqualifiedV1(
            lead_id=lead.lead_id,
            reason=body.reason,
            duplicate_of=body.duplicate_of,
            disqualified_at=now,
            operator_id=principal.token_id,
        ),
    )
    await session.flush()
    log.info("lead.disqualified", lead_id=lead.lead_id, reason=body.reason)
    return lead


def _invalid_duplicate(message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid or missing fields: duplicate_of ({message})",
        errors=[
            {
                "field": "duplicate_of",
                "location": "body",
                "type": "invalid_reference",
                "message": message,
            }
        ],
    )
