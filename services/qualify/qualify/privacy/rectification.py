"""Rectification (GDPR Art. 16), qualify's share: on ``privacy.client-rectified.v1`` (crm) each
lead of the queue takes the corrected name, phone or e-mail (what operators read and call), and
the messages still queued for it go to the corrected number or address. A removed phone or
e-mail cancels what was queued to it.

What was already sent or received keeps its address: it records where a message went or came
from (erasure and retention reach it). A marketplace's relay address is not the person's and is
left alone. Blocks and the do-not-contact list are checked by the sender when a message leaves,
so a corrected contact that objected gets nothing.

Idempotent on its data (the shared consumer also skips a redelivered event id): a lead already
holding the corrected values is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads.repository import LeadRepository
from qualify.messages import state
from qualify.messages.events import MessageRef, stage_status
from qualify.models import QueuedLead
from qualify.privacy.repository import RectificationRepository
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import MessageChannel
from shared.events.privacy import ClientRectifiedV1
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

CLIENT_RECTIFIED = "privacy.client-rectified.v1"
CANCELLED_REASON = "contact_removed"


@dataclass
class Correction:
    changed: bool = False
    # The addresses replaced, by message channel (``sms``: the phone, ``email``: the e-mail).
    replaced: dict[MessageChannel, str | None] = field(default_factory=dict)


def correct(lead: QueuedLead, event: ClientRectifiedV1) -> Correction:
    """Apply the event's values to ``lead``."""
    correction = Correction()
    for name in event.fields:
        if name == "full_name":
            # The whole name: the first name held for the messages' greeting may be wrong.
            if (lead.full_name, lead.first_name) != (event.full_name, None):
                lead.full_name, lead.first_name = event.full_name, None
                correction.changed = True
        elif name == "phone" and lead.phone != event.phone:
            correction.replaced["sms"], lead.phone = lead.phone, event.phone
            correction.changed = True
        elif name == "email" and lead.email != event.email:
            correction.replaced["email"], lead.email = lead.email, event.email
            correction.changed = True
    return correction


async def rectify(
    session: AsyncSession, outbox: Outbox, event: ClientRectifiedV1, *, now: datetime
) -> int:
    """Correct the queue's leads named by the event and their queued messages; returns how many
    leads changed."""
    leads = LeadRepository.from_session(session)
    messages = RectificationRepository.from_session(session)
    changed = 0
    for lead_id in sorted(set(event.lead_ids)):
        lead = await leads.get(lead_id)
        if lead is None:
            continue  # not qualify's (direct routing), or erased
        correction = correct(lead, event)
        if not correction.changed:
            continue
        changed += 1
        replaced = correction.replaced
        for message in await messages.queued_of_lead(lead_id) if replaced else ():
            if message.channel not in replaced or message.to_address != replaced[message.channel]:
                continue  # another channel, or a relay address
            address = lead.phone if message.channel == "sms" else lead.email
            if address is not None:
                message.to_address = address
                continue
            message.status, message.reason, message.finished_at = (
                state.CANCELLED,
                CANCELLED_REASON,
                now,
            )
            await stage_status(
                session,
                outbox,
                MessageRef.of(message),
                "cancelled",
                reason=CANCELLED_REASON,
                at=now,
            )
    log.info("qualify.client_rectified", leads=changed, fields=list(event.fields))
    return changed


def rectification_handler(outbox: Outbox, clock: Clock) -> Handler:
    async def on_client_rectified(session: AsyncSession, envelope: Envelope) -> None:
        event = ClientRectifiedV1.model_validate(envelope.data)
        await rectify(session, outbox, event, now=clock())

    return on_client_rectified
