"""A lead's conversation: its messages out and the prospect's replies, oldest first; and marking
the replies read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads.access import can_read
from qualify.leads.repository import LeadRepository
from qualify.messages.repository import MessageRepository
from qualify.messages.schemas import ConversationItem, ConversationOut, IncomingOut, OutgoingOut
from qualify.models import IncomingMessage, OutgoingMessage, QueuedLead
from qualify.problems import LeadNotFound
from shared.auth import Principal
from shared.errors import Forbidden


def outgoing_out(message: OutgoingMessage) -> OutgoingOut:
    return OutgoingOut(
        id=message.id,
        channel=message.channel,
        kind=message.kind,
        status=message.status,
        created_at=message.created_at,
        to=message.to_address,
        subject=message.subject,
        text=message.text,
        operator_id=message.operator_id,
        attempt_id=message.attempt_id,
        in_reply_to=message.in_reply_to,
        attempts=message.attempts,
        sent_at=message.sent_at,
        delivered_at=message.delivered_at,
        finished_at=message.finished_at,
        reason=message.reason,
        waiting_reason=message.waiting_reason,
        last_error=message.last_error,
        bounce=message.bounce,
        bounce_status=message.bounce_status,
    )


def incoming_out(message: IncomingMessage) -> IncomingOut:
    return IncomingOut(
        id=message.id,
        channel=message.channel,
        received_at=message.received_at,
        sender=message.sender,
        subject=message.subject,
        text=message.text,
        in_reply_to=message.in_reply_to,
        stop_request=message.stop_request,
        read_at=message.read_at,
        read_by=message.read_by,
    )


async def readable_lead(
    session: AsyncSession, lead_id: str, principal: Principal, now: datetime
) -> QueuedLead:
    """The lead, if the caller may read it (the same rule as ``GET /v1/leads/{id}``)."""
    lead = await LeadRepository.from_session(session).get(lead_id)
    if lead is None:
        raise LeadNotFound()
    if not can_read(lead, principal, now):
        raise Forbidden("This lead is another operator's; a manager may read it.")
    return lead


async def conversation(
    session: AsyncSession, lead_id: str, principal: Principal, now: datetime
) -> ConversationOut:
    lead = await readable_lead(session, lead_id, principal, now)
    messages = MessageRepository.from_session(session)
    # Oldest first; at the same instant, ours before theirs, e-mail before SMS (stable).
    timed: list[tuple[datetime, int, str, str, ConversationItem]] = [
        (message.created_at, 0, message.channel, message.id, outgoing_out(message))
        for message in await messages.outgoing_of(lead_id)
    ]
    timed += [
        (message.received_at, 1, message.channel, message.id, incoming_out(message))
        for message in await messages.incoming_of(lead_id)
    ]
    timed.sort(key=lambda item: item[:4])
    return ConversationOut(
        lead_id=lead.lead_id,
        unread_replies=lead.unread_replies,
        items=[item[4] for item in timed],
    )


async def mark_read(
    session: AsyncSession, lead_id: str, principal: Principal, now: datetime
) -> int:
    await readable_lead(session, lead_id, principal, now)
    return await MessageRepository.from_session(session).mark_read(
        lead_id, at=now, by=principal.token_id
    )
