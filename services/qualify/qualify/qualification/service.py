"""Qualifying and disqualifying a lead: the caller must hold the claim; the lead closes and its
event is staged in the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from qualify.leads import schedule, state
from qualify.leads.repository import LeadRepository
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.problems import ContactSuppressed, LeadOpen, LeadQualified
from qualify.qualification.repository import Closed, QualificationRepository, qualify_held
from qualify.qualification.schemas import DisqualificationIn, QualificationIn, ReopeningIn
from qualify.queue.repository import autocommit
from qualify.suppression.service import contact_suppressed, is_suppressed
from shared.auth import Principal
from shared.db.session import (
    SessionFactory,
    session_scope,
    wake_after_commit,
    wakeups_of,
)
from shared.errors import Forbidden, InvalidRequest
from shared.events.payloads import (
    ContactV1,
    DisqualificationReason,
    LeadDisqualifiedV1,
    LeadQualifiedV1,
    LeadReopenedV1,
    RoutingPath,
)
from shared.outbox import Outbox, event_row

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Qualified:
    """A qualification as stored: its row's columns (``data`` the body as JSON)."""

    lead_id: str
    operator_id: str
    operator_name: str
    qualified_at: datetime
    data: dict[str, Any]


async def qualify(
    sessions: SessionFactory,
    principal: Principal,
    lead_id: str,
    body: QualificationIn,
    *,
    policy: Policy,
    outbox: Outbox,
    now: datetime,
) -> Qualified:
    """Close the lead the caller holds as qualified, store the qualification and stage
    ``lead.qualified.v1``, in a unit of work of its own. On PostgreSQL the three are one
    precompiled statement (``qualify_held``), run in autocommit on a connection without an ORM
    session unless a marketing consent makes the do-not-contact list to check (then in a
    transaction, which it may roll back); on SQLite three."""
    marketing = any(consent.granted for consent in body.consents.values())
    key = policy.settings.privacy_hmac_key.get_secret_value().encode()
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        async with session_scope(sessions) as session:
            qualification = await _qualify_in_steps(
                session, principal, lead_id, body, outbox=outbox, now=now, key=key
            )
    elif marketing:
        async with session_scope(sessions) as session:
            qualification, closed = await _qualify_at_once(
                session, principal, lead_id, body, outbox=outbox, now=now
            )
            wake_after_commit(session, outbox.table.name)  # the relay, once committed
            # A refusal raises: the unit of work rolls the closing and its rows back.
            if await contact_suppressed(session, phone=closed.phone, email=closed.email, key=key):
                raise _suppressed()
    else:
        async with autocommit(engine) as connection:
            qualification, _ = await _qualify_at_once(
                connection, principal, lead_id, body, outbox=outbox, now=now
            )
        # The statement committed by itself: wake the relay as a unit of work's commit does.
        wakeups_of(sessions).notify((outbox.table.name,))
    log.info("lead.qualified", lead_id=lead_id, intent=body.intent, channel=body.channel)
    return qualification


# Stands in for the lead's fields in the event validated before the statement; its SQL replaces
# each of them (source, received_at, contact, vehicle_ad_ref) with the closed lead's.
_LEAD_STAND_IN: dict[str, Any] = {
    "source": "api",
    "contact": {},
}


async def _qualify_at_once(
    on: AsyncSession | AsyncConnection,
    principal: Principal,
    lead_id: str,
    body: QualificationIn,
    *,
    outbox: Outbox,
    now: datetime,
) -> tuple[Qualified, Closed]:
    """PostgreSQL: the lead closed, the qualification and its event written by one statement
    (in a session's transaction, or on an autocommit connection); the event is validated here
    with stand-ins for the lead's fields, which the statement fills from the closed lead (the
    same data ``record_qualification`` stages). The caller wakes the relay once committed."""
    data = body.model_dump(mode="json")
    row: dict[str, Any] = {
        "lead_id": lead_id,
        "operator_id": principal.token_id,
        "operator_name": principal.name,
        "qualified_at": now,
        "data": data,
    }
    payload = LeadQualifiedV1.model_validate(
        {
            **data,
            **_LEAD_STAND_IN,
            "received_at": now,
            "lead_id": lead_id,
            "qualified_at": now,
            "operator_id": principal.token_id,
            "path": "qualify",
        }
    )
    event = event_row(
        source=outbox.source, event_type="lead.qualified.v1", subject=lead_id, payload=payload
    )
    closed = await qualify_held(
        on, row, site=body.site, path="qualify", outbox=outbox.table, event=event
    )
    if data["vehicle_ad_ref"] is None:
        data["vehicle_ad_ref"] = closed.ad_ref
    return Qualified(**row), closed


async def _qualify_in_steps(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: QualificationIn,
    *,
    outbox: Outbox,
    now: datetime,
    key: bytes,
) -> Qualified:
    """SQLite (no data-modifying CTEs): the closing UPDATE … RETURNING, the do-not-contact
    check of a marketing consent, then ``record_qualification``'s two INSERTs."""
    lead = await QualificationRepository.from_session(session).close_held(
        lead_id, operator_id=principal.token_id, now=now, site=body.site, path="qualify"
    )
    marketing = any(consent.granted for consent in body.consents.values())
    # A refusal raises: the unit of work rolls the closing back.
    if marketing and await is_suppressed(session, lead, key):
        raise _suppressed()
    return await record_qualification(
        session,
        outbox,
        lead,
        body,
        operator_id=principal.token_id,
        operator_name=principal.name,
        now=now,
    )


def _suppressed() -> ContactSuppressed:
    return ContactSuppressed(
        "This person is on the do-not-contact list: record no marketing consent."
    )


async def record_qualification(
    session: AsyncSession,
    outbox: Outbox,
    lead: QueuedLead,
    body: QualificationIn,
    *,
    operator_id: str,
    operator_name: str,
    now: datetime,
    path: RoutingPath = "qualify",
) -> Qualified:
    """Close the lead as qualified, store the qualification and stage ``lead.qualified.v1``
    (an operator's, or the direct routing's machine qualification). The lead is closed in
    memory: its writer is the caller's (the operator's route closed it already with the UPDATE
    that returned it, the receipt's flush writes the lead it inserted)."""
    if body.vehicle_ad_ref is None and lead.ad_ref is not None:
        body = body.model_copy(update={"vehicle_ad_ref": lead.ad_ref})
    state.close(lead, state.QUALIFIED, by=operator_id, at=now)
    lead.routing_path = path
    if body.site is not None:
        lead.site = body.site
    data = body.model_dump(mode="json")
    row: dict[str, Any] = {
        "lead_id": lead.lead_id,
        "operator_id": operator_id,
        "operator_name": operator_name,
        "qualified_at": now,
        "data": data,
    }
    await QualificationRepository.from_session(session).add(row)
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
                "operator_id": operator_id,
                "path": path,
                "contact": ContactV1(
                    full_name=lead.full_name, email=lead.email, phone=lead.phone
                ).model_dump(),
            }
        ),
    )
    return Qualified(**row)


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


async def reopen(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: ReopeningIn,
    *,
    policy: Policy,
    outbox: Outbox,
    now: datetime,
    manager: bool,
) -> tuple[QueuedLead, DisqualificationReason]:
    """Undo a disqualification: the operator who made it within ``reopen_window_hours``, a
    manager any time. The lead is open again, due within the first-contact delay from now, and
    ``lead.reopened.v1`` says who and why. A qualified lead is dispatch's: 409."""
    lead = await LeadRepository.from_session(session).get_for_update(lead_id)
    if lead.status == state.QUALIFIED:
        raise LeadQualified("A qualified lead belongs to dispatch; it cannot be reopened.")
    if lead.is_open:
        raise LeadOpen("The lead is open; there is nothing to reopen.")
    assert lead.closed_at is not None
    assert lead.disqualification_reason is not None
    if not manager:
        if lead.handled_by != principal.token_id:
            raise Forbidden(
                "Only the operator who disqualified the lead, or a manager, may reopen it."
            )
        until = lead.closed_at + timedelta(hours=policy.settings.reopen_window_hours)
        if now > until:
            raise Forbidden(
                "The delay for the operator to reopen the lead is over; a manager may.",
                reopen_until=until.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            )
    previous = lead.disqualification_reason
    state.reopen(lead, by=principal.token_id, at=now, reason=body.reason)
    schedule.set_next_contact(lead, schedule.first_contact(policy, lead.source, now))
    await outbox.stage(
        session,
        "lead.reopened.v1",
        lead.lead_id,
        LeadReopenedV1(
            lead_id=lead.lead_id,
            reopened_at=now,
            operator_id=principal.token_id,
            reason=body.reason,
            previous_reason=previous,
            due_at=lead.due_at,
        ),
    )
    await session.flush()
    log.info("lead.reopened", lead_id=lead.lead_id, reason=body.reason, previous=previous)
    return lead, previous


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
