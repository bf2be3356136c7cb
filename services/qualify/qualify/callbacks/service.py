"""Scheduling, replacing and cancelling the call-back a prospect asked for.

A call-back is a phone call at an instant the prospect chose, so it must be one the law and the
call centre allow: inside the legal calling window in the prospect's time zone (D223-9: hours,
weekdays, holidays), within the call limit and no refusal's block at that instant, and while the
call centre is open. Otherwise ``409 contact-not-allowed`` with ``reason`` and the first instant
allowed (``next_allowed_at``). In the past or more than ``callback_max_days_ahead`` ahead: 422.

Setting one releases the caller's claim: the lead leaves the queue until its time, then comes
back first (``leads/schedule.py``). Until its time the lead is the setter's: nobody else may
claim it (a manager may cancel it); from its time anyone may. A call fulfils it; an SMS or an
e-mail does not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.callbacks.schemas import CallbackIn
from qualify.leads import schedule, state
from qualify.leads.repository import LeadRepository
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.problems import (
    CallbackNotFound,
    ClaimRequired,
    ContactNotAllowed,
    MissingContactDetail,
)
from shared.auth import Principal
from shared.contact_rules import allowed, consumer_zone, rules_for_phone
from shared.errors import InvalidRequest

log = structlog.get_logger(__name__)

CALL_CENTRE_CLOSED = "call_centre_closed"


def prospect_timezone(policy: Policy, phone: str | None) -> str:
    """The prospect's time zone: an overseas number's own, else the calling rules' zone."""
    overseas = consumer_zone(phone)
    return overseas[0] if overseas is not None else policy.settings.calling_timezone


def _require_may_change(
    lead: QueuedLead, principal: Principal, now: datetime, *, manager: bool
) -> None:
    """The caller holds the claim, or owns the lead's call-back (and nobody else holds the
    lead), or is a manager."""
    state.require_open(lead)
    me = principal.token_id
    if manager or state.is_held_by(lead, me, now):
        return
    if state.has_active_claim(lead, now):
        state.require_holder(lead, me, now)  # raises LeadClaimed
    if lead.callback_at is not None and lead.callback_by == me:
        return
    raise ClaimRequired("Claim the lead first (no claim, or the claim expired).")


def _invalid_at(kind: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid or missing fields: at ({message})",
        errors=[{"field": "at", "location": "body", "type": kind, "message": message}],
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def set_callback(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: CallbackIn,
    *,
    policy: Policy,
    now: datetime,
    manager: bool,
) -> QueuedLead:
    repository = LeadRepository.from_session(session)
    lead = await repository.get_for_update(lead_id)
    _require_may_change(lead, principal, now, manager=manager)
    if not lead.phone:
        raise MissingContactDetail("The lead has no phone number.", channel="phone")
    zone = prospect_timezone(policy, lead.phone)
    local = body.at if body.at.tzinfo is not None else body.at.replace(tzinfo=ZoneInfo(zone))
    at = local.astimezone(UTC)
    if at <= now:
        raise _invalid_at("in_the_past", "must be in the future")
    _, latest = schedule.callback_window(policy, now)
    if at > latest:
        days = policy.settings.callback_max_days_ahead
        raise _invalid_at("too_far_ahead", f"must be at most {days} days ahead")

    await repository.lock_consumer(lead.phone)
    calls, refusals = await repository.consumer_phone_history(
        lead.phone, now - policy.calling.period
    )
    rules = rules_for_phone(policy.calling, lead.phone)
    decision = allowed(at, rules=rules, previous_calls=calls, refusals=refusals)
    reason = decision.reason.value if decision.reason is not None else None
    message = decision.message
    if reason is None and not policy.calendar.is_open(at):
        reason, message = CALL_CENTRE_CLOSED, "The call centre is closed at that time."
    if reason is not None:
        log.info("callback.refused", lead_id=lead.lead_id, reason=reason)
        first = schedule.callable_from(
            at, centre=policy.calendar, rules=rules, calls=calls, refusals=refusals
        )
        permanent = decision.reason is not None and decision.next_allowed_at is None
        raise ContactNotAllowed(
            message, reason=reason, next_allowed_at=None if permanent else _iso(first)
        )

    state.clear_claim(lead)
    lead.callback_at = at
    lead.callback_timezone = zone
    lead.callback_by = principal.token_id
    lead.callback_set_at = now
    lead.callback_note = body.note
    schedule.set_next_contact(lead, schedule.callback(at))
    await session.flush()
    log.info("callback.scheduled", lead_id=lead.lead_id)
    return lead


async def cancel_callback(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    *,
    policy: Policy,
    now: datetime,
    manager: bool,
) -> QueuedLead:
    """The lead goes back to the queue at once, due within the first-contact delay."""
    lead = await LeadRepository.from_session(session).get_for_update(lead_id)
    state.require_open(lead)
    if lead.callback_at is None:
        raise CallbackNotFound("The lead has no scheduled call-back.")
    _require_may_change(lead, principal, now, manager=manager)
    state.clear_callback(lead)
    schedule.set_next_contact(lead, schedule.first_contact(policy, lead.source, now))
    await session.flush()
    log.info("callback.cancelled", lead_id=lead.lead_id)
    return lead
