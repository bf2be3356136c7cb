"""What ingest reads back from qualify: the SMS it sent (``lead.message-sent.v1``), so that an
inbound SMS finds the lead it answers (``conversations.service.answered_sms``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ingest.conversations.repository import ConversationRepository
from ingest.leads.repository import LeadRepository
from shared.consumer import Handler, Selective
from shared.events import Envelope
from shared.events.payloads import LeadMessageSentV1
from shared.privacy import contact_hash

MESSAGE_SENT = "lead.message-sent.v1"


def sms_sent_handler(key: bytes) -> Handler:
    async def on_message_sent(session: AsyncSession, envelope: Envelope) -> None:
        event = LeadMessageSentV1.model_validate(envelope.data)
        if event.channel != "sms":
            return
        lead = await LeadRepository.from_session(session).get(event.lead_id)
        if lead is None or not lead.phone:
            return  # not a lead of ours (or erased): no reply can be matched to it here
        await ConversationRepository.from_session(session).add_sent_sms(
            message_id=event.message_id,
            lead_id=event.lead_id,
            phone_hash=contact_hash(lead.phone, key),
            sent_at=event.sent_at,
        )

    # Most messages sent are e-mails: ignored from the event, without a transaction.
    return Selective(on_message_sent, wants=_is_sms)


def _is_sms(envelope: Envelope) -> bool:
    return envelope.data.get("channel") == "sms"
