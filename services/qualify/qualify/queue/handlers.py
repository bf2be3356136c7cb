"""Event handlers of the queue: event in, queue row out (same transaction as processed_event)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.config_cache import ConfigView
from qualify.leads.repository import LeadRepository, new_queued_lead
from qualify.leads.state import WAITING
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.routing.service import route_at_receipt
from qualify.suppression.repository import ContactBlocks
from shared.clock import Clock
from shared.events import Envelope
from shared.events.payloads import LeadReceivedV1
from shared.outbox import Outbox


class ContactsToCheck(Protocol):
    """The hashes a first answer checks on the lists (the person's, and its addresses')."""

    @property
    def suppressed(self) -> Sequence[str]: ...
    @property
    def blocked(self) -> Sequence[str]: ...


ContactsT = TypeVar("ContactsT", bound=ContactsToCheck)


class FirstAnswer(Protocol[ContactsT]):
    """The first answer to a new lead (qualify.messages), decided in the transaction that
    queues it: with the templates of the configuration's version the lead's insert saw, and
    the lists as that insert read them for ``contacts`` (one statement on PostgreSQL)."""

    def contacts(self, lead: QueuedLead) -> ContactsT: ...

    async def __call__(
        self,
        session: AsyncSession,
        lead: QueuedLead,
        now: datetime,
        config: ConfigView,
        checked: tuple[ContactsT, ContactBlocks] | None = None,
    ) -> object: ...


def lead_received_handler(
    policy: Policy, clock: Clock, outbox: Outbox, first_answer: FirstAnswer[Any] | None = None
) -> Callable[[AsyncSession, Envelope], Awaitable[None]]:
    async def on_lead_received(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadReceivedV1.model_validate(envelope.data)
        now = clock()
        lead = new_lead(policy, event, now=now)
        contacts = first_answer.contacts(lead) if first_answer is not None else None
        queued = await queue_lead(session, policy, lead, contacts)
        if queued is None:  # a replay: nothing new
            return
        config, blocks = queued
        # Its routing policy first: a direct lead is qualified by the machine at once and never
        # enters the queue (it stays recorded here, and a site rule tells its site)…
        await route_at_receipt(session, policy, lead, outbox=outbox, now=now, config=config)
        if first_answer is not None:  # …then the first answer goes out on either path
            await first_answer(session, lead, now, config, (contacts, blocks))

    return on_lead_received


async def queue_lead(
    session: AsyncSession, policy: Policy, lead: QueuedLead, contacts: ContactsToCheck | None
) -> tuple[ConfigView, ContactBlocks] | None:
    """Queue ``lead`` (``new_lead``), with the cached rules and templates valid for it and what
    the lists say of ``contacts``. Idempotent: a lead re-published under a new event id is
    already queued (returns None). One statement on PostgreSQL: an insert that does nothing on
    a known lead id, which also reads the configuration's version and the lists."""
    repository = LeadRepository.from_session(session)
    if contacts is None:
        inserted, version = await repository.add_new_reading_version(lead)
        blocks = ContactBlocks()
    else:
        inserted, version, blocks = await repository.add_new_checking_contacts(
            lead, suppressed=contacts.suppressed, blocked=contacts.blocked
        )
    if not inserted:
        return None
    return policy.config.at(version), blocks


def new_lead(policy: Policy, event: LeadReceivedV1, *, now: datetime) -> QueuedLead:
    """The queue's row of a new lead, due ``first_contact_minutes`` business minutes after
    receipt (not inserted)."""
    return new_queued_lead(
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
