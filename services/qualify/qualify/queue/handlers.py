"""Event handlers of the queue: event in, queue row out (same transaction as processed_event)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.config_cache import ConfigView
from qualify.leads.repository import LeadRepository
from qualify.leads.state import WAITING
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.routing.service import route_at_receipt
from shared.clock import Clock
from shared.events import Envelope
from shared.events.payloads import LeadReceivedV1
from shared.outbox import Outbox

# The first answer to a new lead (qualify.messages), decided in the transaction that queues it,
# with the templates of the version of the configuration the lead's insert saw.
FirstAnswer = Callable[[AsyncSession, QueuedLead, datetime, ConfigView], Awaitable[object]]


def lead_received_handler(
    policy: Policy, clock: Clock, outbox: Outbox, first_answer: FirstAnswer | None = None
) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    async def on_lead_received(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadReceivedV1.model_validate(envelope.data)
        now = clock()
        queued = await queue_lead(session, policy, event, now=now)
        if queued is None:  # a replay: nothing new
            return
        lead, config = queued
        # Its routing policy first: a direct lead is qualified by the machine at once and never
        # enters the queue (it stays recorded here, and a site rule tells its site)…
        await route_at_receipt(session, policy, lead, outbox=outbox, now=now, config=config)
        if first_answer is not None:  # …then the first answer goes out on either path
            await first_answer(session, lead, now, config)

    return on_lead_received


async def queue_lead(
    session: AsyncSession, policy: Policy, event: LeadReceivedV1, *, now: datetime
) -> tuple[QueuedLead, ConfigView] | None:
    """Queue the lead, due ``first_contact_minutes`` business minutes after receipt, with the
    cached rules and templates valid for it. Idempotent: a lead re-published under a new event
    id is already queued (returns None). One statement: an insert that does nothing on a known
    lead id, which also reads the configuration's version."""
    lead = QueuedLead(
        lead_id=event.lead_id,
        status=WAITING,
        is_open=True,
        kind=event.kind,
        source=event.source,
        received_at=event.received_at,
        due_at=policy.due_at(event.source, event.received_at),
        full_name=event.contact.full_name,
        phone=event.contact.phone,
        email=event.contact.email,
        ad_ref=event.vehicle.ad_ref,
        message=event.message,
        first_name=event.contact.first_name,
        vehicle=event.vehicle.model_dump(exclude_none=True) or None,
        relay_email=event.relay_email,
        unread_replies=0,
        enqueued_at=now,
        attempt_count=0,
        unanswered_count=0,
    )
    inserted, version = await LeadRepository.from_session(session).add_new_reading_version(lead)
    if not inserted:
        return None
    return lead, policy.config.at(version)
