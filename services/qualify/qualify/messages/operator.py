"""An operator's message to the prospect: recorded as a contact attempt under the contact rules
(the same as a recorded SMS or e-mail attempt: an open lead the caller holds, a contact detail
for the channel) plus qualify's own (the person did not opt out of the channel, the address did
not bounce), then queued for the sender in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.attempts import service as attempts
from qualify.attempts.schemas import AttemptIn
from qualify.leads import state
from qualify.leads.repository import LeadRepository
from qualify.messages.compose import Composer, facts_of
from qualify.messages.repository import MessageRepository
from qualify.messages.schemas import OperatorMessageIn
from qualify.messages.service import contact_addresses, destination, new_message
from qualify.models import OutgoingMessage
from qualify.problems import ContactNotAllowed, MissingContactDetail
from qualify.suppression.service import blocked_reason
from shared.auth import Principal
from shared.errors import InvalidRequest
from shared.outbox import Outbox


@dataclass(frozen=True)
class Sent:
    message: OutgoingMessage
    recorded: attempts.Recorded


def _invalid(field: str, kind: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid or missing fields: {field} ({message})",
        errors=[{"field": field, "location": "body", "type": kind, "message": message}],
    )


async def send(
    session: AsyncSession,
    principal: Principal,
    lead_id: str,
    body: OperatorMessageIn,
    *,
    composer: Composer,
    outbox: Outbox,
    now: datetime,
) -> Sent:
    lead = await LeadRepository.from_session(session).get_for_update(lead_id)
    state.require_holder(lead, principal.token_id, now)
    channel = body.channel
    if channel == "sms" and body.subject is not None:
        raise _invalid("subject", "extra_forbidden", "an SMS has no subject")
    to = destination(lead, channel)
    if to is None:
        raise MissingContactDetail(
            "The lead has no e-mail address."
            if channel == "email"
            else "The lead has no mobile phone number.",
            channel=channel,
        )
    key = composer.settings.privacy_hmac_key.get_secret_value().encode()
    blocked = await blocked_reason(session, channel, contact_addresses(lead, channel), key)
    if blocked is not None:
        unreachable = blocked == "hard_bounce"
        raise ContactNotAllowed(
            "The address bounced: it does not exist."
            if unreachable
            else "The person asked not to receive messages on this channel.",
            reason="address_unreachable" if unreachable else "opted_out",
        )
    messages = MessageRepository.from_session(session)
    replied = None
    if body.in_reply_to is not None:
        replied = await messages.get_incoming(body.in_reply_to)
        if replied is None or replied.lead_id != lead.lead_id:
            raise _invalid("in_reply_to", "not_found", "not a reply of this lead")
    composed = await composer.compose(
        session,
        kind=body.template,
        channel=channel,
        lead_id=lead.lead_id,
        facts=facts_of(lead),
        site=lead.site,
        source=lead.source,
        now=now,
        sender_name=principal.name,
        text=body.text,
    )
    if composed.sms is not None and composed.sms.truncated:
        limit = composer.settings.message_sms_max_segments
        raise _invalid("text", "too_long", f"the SMS would exceed {limit} segment(s)")

    recorded = await attempts.record(
        session,
        principal,
        lead.lead_id,
        AttemptIn(channel=channel, outcome=body.outcome),
        policy=composer.policy,
        outbox=outbox,
        now=now,
    )
    message = new_message(
        composer,
        lead,
        composed,
        kind=body.template,
        channel=channel,
        to=to,
        now=now,
        valid_for=timedelta(minutes=composer.settings.message_operator_valid_minutes),
        operator_id=principal.token_id,
        attempt_id=recorded.attempt.id,
        in_reply_to=replied.id if replied is not None else None,
    )
    if channel == "email":
        if body.subject is not None:
            message.subject = body.subject
        elif replied is not None and replied.subject:
            subject = replied.subject
            message.subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    messages.add(message)
    await session.flush()
    return Sent(message, recorded)
