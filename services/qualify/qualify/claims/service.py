"""Claiming, renewing and releasing a lead."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads import state
from qualify.leads.repository import LeadRepository
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.problems import ClaimRequired, LeadClaimed, LeadNotFound
from qualify.queue.repository import HeldClaim, QueueRepository, claim_alone
from shared.auth import Principal
from shared.db.session import SessionFactory, read_only, session_scope
from shared.errors import Problem


async def claim(
    sessions: SessionFactory, policy: Policy, principal: Principal, lead_id: str, now: datetime
) -> HeldClaim:
    """Claim (or re-claim, which renews) a lead, in a unit of work of its own. A conditional
    UPDATE decides the winner (and returns the claim); the loser gets a 404 or 409 problem saying
    why. One statement writes: on PostgreSQL it runs in autocommit, precompiled, without an ORM
    session (``claim_alone``); a refusal reads the lead in a session of its own."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        async with session_scope(sessions) as session:
            held = await QueueRepository.from_session(session).claim(
                lead_id,
                now=now,
                operator_id=principal.token_id,
                operator_name=principal.name,
                expires_at=now + policy.lease,
            )
            if held is None:
                raise await _refusal(session, principal, lead_id, now)
            return held
    held = await claim_alone(
        engine,
        lead_id,
        now=now,
        operator_id=principal.token_id,
        operator_name=principal.name,
        expires_at=now + policy.lease,
    )
    if held is not None:
        return held
    async with read_only(sessions) as session:
        refusal = await _refusal(session, principal, lead_id, now)
    raise refusal


async def _refusal(
    session: AsyncSession, principal: Principal, lead_id: str, now: datetime
) -> Problem:
    """Why the conditional UPDATE refused the claim, read from the lead as it is now."""
    lead = await LeadRepository.from_session(session).reload(lead_id)
    if lead is None:
        return LeadNotFound()
    state.require_claimable(lead, principal.token_id, now)
    return LeadClaimed("Another operator holds this lead.")  # pragma: no cover


async def renew(
    session: AsyncSession, policy: Policy, principal: Principal, lead_id: str, now: datetime
) -> QueuedLead:
    lead = await LeadRepository.from_session(session).get_for_update(lead_id)
    state.require_holder(lead, principal.token_id, now)
    lead.claim_expires_at = now + policy.lease
    return lead


async def release(
    session: AsyncSession, principal: Principal, lead_id: str, now: datetime, *, manager: bool
) -> None:
    """The holder (or a manager) gives the lead back to the queue."""
    lead = await LeadRepository.from_session(session).get_for_update(lead_id)
    state.require_open(lead)
    if not state.has_active_claim(lead, now):
        raise ClaimRequired("The lead is not claimed.")
    if not manager:
        state.require_holder(lead, principal.token_id, now)
    state.clear_claim(lead)
