"""Consumers of ingest's inbound events: a reply joins the lead's conversation (and marks it
unread; a STOP opts the person out at once), a bounce updates the message (a hard one blocks the
address). Idempotent: a reply is recorded once per (channel, ingest's id)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads.repository import LeadRepository
from qualify.messages import state
from qualify.messages.events import MessageRef, stage_status
from qualify.messages.opt_out import cancel_queued, opt_out
from qualify.messages.repository import MessageRepository
from qualify.models import IncomingMessage
from qualify.problems import LeadNotFound
from qualify.suppression.service import block
from shared.clock import Clock
from shared.events import Envelope
from shared.events.payloads import LeadMessageBouncedV1, LeadMessageReceivedV1
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# A hard bounce can overtake the sender's own record of the hand-over (seconds apart).
_BOUNCEABLE = frozenset({state.SENDING, state.SENT, state.UNCONFIRMED, state.DELIVERED})


async def record_reply(
    session: AsyncSession,
    event: LeadMessageReceivedV1,
    *,
    key: bytes,
    outbox: Outbox,
    now: datetime,
) -> IncomingMessage | None:
    """The reply as recorded; None when the lead is unknown here or the reply was recorded."""
    leads = LeadRepository.from_session(session)
    try:
        lead = await leads.get_for_update(event.lead_id)
    except LeadNotFound:
        log.info("message.reply_unknown_lead", lead_id=event.lead_id)
        return None
    messages = MessageRepository.from_session(session)
    in_reply_to = None
    if event.in_reply_to:
        answered = await messages.get(event.in_reply_to)
        if answered is not None and answered.lead_id == lead.lead_id:
            in_reply_to = answered.id
    reply = IncomingMessage(
        id=str(uuid.uuid4()),
        lead_id=lead.lead_id,
        channel=event.channel,
        source_message_id=event.message_id,
        sender=event.sender,
        subject=event.subject,
        text=event.text,
        received_at=event.received_at,
        recorded_at=now,
        in_reply_to=in_reply_to,
        message_id_header=event.email_message_id,
        stop_request=event.stop_request,
    )
    if not await messages.add_incoming(reply):
        return None
    lead.unread_replies = (lead.unread_replies or 0) + 1
    if event.stop_request:
        await opt_out(
            session,
            lead,
            event.channel,
            via="stop_reply",
            also=[event.sender],
            key=key,
            outbox=outbox,
            now=now,
        )
    log.info(
        "message.reply_recorded",
        lead_id=lead.lead_id,
        channel=event.channel,
        stop_request=event.stop_request,
    )
    return reply


async def record_bounce(
    session: AsyncSession,
    event: LeadMessageBouncedV1,
    *,
    key: bytes,
    outbox: Outbox,
    now: datetime,
) -> bool:
    """Record the bounce on its message; a hard one bounces it and blocks the address."""
    message = await MessageRepository.from_session(session).get(event.message_id)
    if message is None or message.lead_id != event.lead_id or message.channel != "email":
        log.info("message.bounce_unknown_message", lead_id=event.lead_id)
        return False
    message.bounce = event.bounce
    message.bounce_status = event.status
    message.bounced_at = event.bounced_at
    if event.bounce == "hard":
        if message.status in _BOUNCEABLE:
            message.status = state.BOUNCED
            message.reason = "hard_bounce"
            message.finished_at = event.bounced_at
            await stage_status(
                session,
                outbox,
                MessageRef.of(message),
                "bounced",
                reason="hard_bounce",
                at=event.bounced_at,
            )
        # The address does not exist: no more e-mails to it, for this lead or any other.
        await block(session, "email", [message.to_address], reason="hard_bounce", at=now, key=key)
        await cancel_queued(
            session, outbox, "email", [message.to_address], reason="unreachable", now=now
        )
    log.info(
        "message.bounce_recorded",
        message_id=message.id,
        lead_id=message.lead_id,
        bounce=event.bounce,
        status=event.status,
    )
    return True


def reply_handler(outbox: Outbox, clock: Clock, key: bytes) -> Handler:
    async def on_message_received(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadMessageReceivedV1.model_validate(envelope.data)
        await record_reply(session, event, key=key, outbox=outbox, now=clock())

    return on_message_received


def bounce_handler(outbox: Outbox, clock: Clock, key: bytes) -> Handler:
    async def on_message_bounced(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadMessageBouncedV1.model_validate(envelope.data)
        await record_bounce(session, event, key=key, outbox=outbox, now=clock())

    return on_message_bounced
