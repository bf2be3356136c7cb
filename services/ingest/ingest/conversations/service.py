"""Recording a message of a lead's conversation and publishing it once: the prospect's e-mail or
SMS reply (``lead.message-received.v1``), a bounce of one of qualify's e-mails
(``lead.message-bounced.v1``). The raw bytes are kept in ``raw_input`` with the lead's id (30
days, reached by erasure); ``inbound_message`` makes a redelivery publish nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.canonical import Ignore
from ingest.conversations.email import ConversationMail, EmailBounce, EmailReply, Unanswerable
from ingest.conversations.repository import ConversationRepository
from ingest.intake.schemas import IntakeOut
from ingest.intake.service import settle
from ingest.leads.repository import LeadRepository
from ingest.models import InboundKind, InboundMessage, OutboundSms, RawInput
from ingest.raw_inputs.repository import RawInputRepository
from shared.events.payloads import LeadMessageBouncedV1, LeadMessageReceivedV1, MessageChannel
from shared.messaging.sms.provider import InboundSms
from shared.messaging.sms_text import is_stop_request
from shared.outbox import Outbox
from shared.privacy import contact_hash

MESSAGE_RECEIVED = "lead.message-received.v1"
MESSAGE_BOUNCED = "lead.message-bounced.v1"
MAX_TEXT = 20_000


def _answer(message: InboundMessage) -> IntakeOut:
    return IntakeOut(
        status=message.kind,
        id=message.id,
        lead_id=message.lead_id,
        raw_input_id=message.raw_input_id or "",
    )


async def _record(
    session: AsyncSession,
    raw: RawInput,
    *,
    kind: InboundKind,
    channel: MessageChannel,
    message_id: str,
    lead_id: str,
    answers: str | None,
    stop_request: bool,
    received_at: datetime,
    now: datetime,
) -> bool:
    """The raw input settled as part of the lead's conversation, and its ``inbound_message``;
    False when a concurrent delivery of the same message recorded it first."""
    raw.outcome = kind
    raw.lead_id = lead_id
    raw.reason = None
    await session.flush()
    return await ConversationRepository.from_session(session).add_if_new(
        {
            "id": message_id,
            "kind": kind,
            "channel": channel,
            "lead_id": lead_id,
            "raw_input_id": raw.id,
            "answers": answers,
            "stop_request": stop_request,
            "received_at": received_at,
            "recorded_at": now,
        }
    )


async def take_conversation_email(
    session: AsyncSession,
    body: bytes,
    found: ConversationMail,
    *,
    channel: str,
    outbox: Outbox,
    now: datetime,
) -> IntakeOut | None:
    """Record and publish a reply or a bounce; None when the reply's lead is unknown here
    (erased: the message is then a new input, e.g. the person writing again)."""
    raw_inputs = RawInputRepository.from_session(session)
    if isinstance(found, Unanswerable):
        raw = await raw_inputs.store(
            channel=channel, content_type="message/rfc822", body=body, received_at=now
        )
        raw.lead_id = found.lead_id
        answer = await settle(session, raw, [Ignore(found.reason)], outbox=outbox, now=now)
        return answer.model_copy(update={"lead_id": found.lead_id})
    conversations = ConversationRepository.from_session(session)
    known = await conversations.get(found.message_id)
    if known is not None:
        return _answer(known)  # delivered again, or read again over IMAP: nothing new
    if await LeadRepository.from_session(session).get(found.lead_id) is None:
        if isinstance(found, EmailReply):
            return None
        raw = await raw_inputs.store(
            channel=channel, content_type="message/rfc822", body=body, received_at=now
        )
        return await settle(session, raw, [Ignore("bounce_lead_unknown")], outbox=outbox, now=now)
    raw = await raw_inputs.store(
        channel=channel, content_type="message/rfc822", body=body, received_at=now
    )
    if isinstance(found, EmailReply):
        recorded = await _record(
            session,
            raw,
            kind="reply",
            channel="email",
            message_id=found.message_id,
            lead_id=found.lead_id,
            answers=found.answers,
            stop_request=found.stop_request,
            received_at=now,
            now=now,
        )
        if recorded:
            await outbox.stage(session, MESSAGE_RECEIVED, found.lead_id, _reply_event(found, now))
    else:
        recorded = await _record(
            session,
            raw,
            kind="bounce",
            channel="email",
            message_id=found.message_id,
            lead_id=found.lead_id,
            answers=found.bounced,
            stop_request=False,
            received_at=now,
            now=now,
        )
        if recorded:
            await outbox.stage(session, MESSAGE_BOUNCED, found.lead_id, _bounce_event(found, now))
    return IntakeOut(
        status="reply" if isinstance(found, EmailReply) else "bounce",
        id=found.message_id,
        lead_id=found.lead_id,
        raw_input_id=raw.id,
    )


def _reply_event(reply: EmailReply, now: datetime) -> LeadMessageReceivedV1:
    return LeadMessageReceivedV1(
        lead_id=reply.lead_id,
        message_id=reply.message_id,
        channel="email",
        received_at=now,
        sender=reply.sender,
        subject=reply.subject,
        text=reply.text[:MAX_TEXT],
        in_reply_to=reply.answers,
        email_message_id=reply.email_message_id,
        stop_request=reply.stop_request,
    )


def _bounce_event(bounce: EmailBounce, now: datetime) -> LeadMessageBouncedV1:
    return LeadMessageBouncedV1(
        lead_id=bounce.lead_id,
        message_id=bounce.bounced,
        bounce="hard" if bounce.hard else "soft",
        status=bounce.status,
        smtp_code=bounce.smtp_code,
        bounced_at=now,
    )


# --- SMS ------------------------------------------------------------------------------------

SmsOutcome = Literal["reply", "duplicate", "ignored", "waiting"]


@dataclass(frozen=True)
class SmsTaken:
    outcome: SmsOutcome  # waiting: left at the provider, asked again at the next poll
    lead_id: str | None = None

    @property
    def acknowledge(self) -> bool:
        """Whether the provider may forget the message (it is recorded here, committed)."""
        return self.outcome != "waiting"


def sms_message_id(provider: str, sms: InboundSms) -> str:
    return f"sms-{provider}-{sms.provider_message_id}"[:100]


def sms_body(provider: str, sms: InboundSms) -> bytes:
    """The raw input of an inbound SMS: what the provider told us, as canonical JSON (the same
    bytes for the same message, so a redelivery is recognised)."""
    return json.dumps(
        {
            "provider": provider,
            "id": sms.provider_message_id,
            "sender": sms.sender,
            "text": sms.text,
            "received_at": sms.received_at.isoformat() if sms.received_at else None,
            "tag": sms.tag,
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()


async def answered_sms(session: AsyncSession, sms: InboundSms, *, key: bytes) -> OutboundSms | None:
    """The SMS an inbound SMS answers: the one named by the provider's tag (qualify tags each SMS
    with its message id) when it went to this sender's number, else the most recent SMS sent to
    that number, whichever lead it was for. None when nothing was sent to it."""
    conversations = ConversationRepository.from_session(session)
    phone_hash = contact_hash(sms.sender, key)
    if sms.tag:
        tagged = await conversations.sent_sms(sms.tag)
        if tagged is not None and tagged.phone_hash == phone_hash:
            return tagged
    return await conversations.last_sms_to(phone_hash)


async def take_sms(
    session: AsyncSession,
    sms: InboundSms,
    *,
    provider: str,
    key: bytes,
    outbox: Outbox,
    now: datetime,
    match_wait: timedelta,
) -> SmsTaken:
    """Record an inbound SMS as a reply of the lead it answers and publish it once; an SMS that
    answers nothing known is left at the provider for ``match_wait`` (the SMS it answers may not
    be known here yet), then recorded as ignored (``sms_sender_unknown``)."""
    message_id = sms_message_id(provider, sms)
    conversations = ConversationRepository.from_session(session)
    known = await conversations.get(message_id)
    if known is not None:
        return SmsTaken("duplicate", known.lead_id)
    raw_inputs = RawInputRepository.from_session(session)
    body = sms_body(provider, sms)
    arrived = sms.received_at or now  # at the provider
    received_at = min(arrived, now)  # never in the future of our clock
    answered = await answered_sms(session, sms, key=key)
    if answered is None:
        if now - arrived < match_wait:
            return SmsTaken("waiting")
        if await raw_inputs.settled_twin(channels=("sms",), body=body) is not None:
            return SmsTaken("duplicate")
        raw = await raw_inputs.store(
            channel="sms", content_type="application/json", body=body, received_at=now
        )
        await settle(session, raw, [Ignore("sms_sender_unknown")], outbox=outbox, now=now)
        return SmsTaken("ignored")
    lead_id = answered.lead_id
    stop_request = is_stop_request(sms.text)
    raw = await raw_inputs.store(
        channel="sms", content_type="application/json", body=body, received_at=now
    )
    recorded = await _record(
        session,
        raw,
        kind="reply",
        channel="sms",
        message_id=message_id,
        lead_id=lead_id,
        answers=answered.message_id,
        stop_request=stop_request,
        received_at=received_at,
        now=now,
    )
    if not recorded:
        return SmsTaken("duplicate", lead_id)
    event = LeadMessageReceivedV1(
        lead_id=lead_id,
        message_id=message_id,
        channel="sms",
        received_at=received_at,
        sender=sms.sender,
        text=sms.text[:MAX_TEXT],
        in_reply_to=answered.message_id,
        stop_request=stop_request,
    )
    await outbox.stage(session, MESSAGE_RECEIVED, lead_id, event)
    return SmsTaken("reply", lead_id)
