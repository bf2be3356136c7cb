"""Writing a message to the prospect into the outbox of messages: where it goes (the lead's
address, or a marketplace's relay; a mobile number for an SMS), whether it may go (channel
blocks), and the row the sender will hand over."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from qualify.messages import state
from qualify.messages.compose import Composed, Composer
from qualify.messages.repository import new_outgoing
from qualify.models import OutgoingMessage, QueuedLead
from qualify.settings import QualifySettings
from shared.events.payloads import MessageChannel, MessageKind
from shared.normalize import is_mobile


def email_destination(lead: QueuedLead) -> str | None:
    """A marketplace's relay address reaches the buyer (and is how they expect to be answered);
    else the address they gave."""
    return lead.relay_email or lead.email


def sms_destination(lead: QueuedLead) -> str | None:
    return lead.phone if lead.phone and is_mobile(lead.phone) else None


def destination(lead: QueuedLead, channel: MessageChannel) -> str | None:
    return email_destination(lead) if channel == "email" else sms_destination(lead)


def contact_addresses(lead: QueuedLead, channel: MessageChannel) -> list[str]:
    """Every address of the lead on ``channel`` (a block on any of them applies)."""
    values = [lead.email, lead.relay_email] if channel == "email" else [lead.phone]
    return [value for value in values if value]


def waiting_reason(settings: QualifySettings, channel: MessageChannel) -> str | None:
    """Why a message of ``channel`` cannot leave with these settings (None: it can)."""
    if channel == "email" and not settings.smtp_host:
        return state.SMTP_NOT_CONFIGURED
    if channel == "sms" and not settings.ovh_configured:
        return state.SMS_NOT_CONFIGURED
    return None


def dedupe_key(lead_id: str, kind: MessageKind, channel: MessageChannel) -> str:
    """One automatic message per lead, kind and channel, whoever decides it and how often."""
    return f"{lead_id}:{kind}:{channel}"


def new_message(
    composer: Composer,
    lead: QueuedLead,
    composed: Composed,
    *,
    kind: MessageKind,
    channel: MessageChannel,
    to: str,
    now: datetime,
    valid_for: timedelta,
    unique: bool = False,
    operator_id: str | None = None,
    attempt_id: str | None = None,
    in_reply_to: str | None = None,
) -> OutgoingMessage:
    message_id = str(uuid.uuid4())
    return new_outgoing(
        id=message_id,
        lead_id=lead.lead_id,
        dedupe_key=dedupe_key(lead.lead_id, kind, channel) if unique else None,
        kind=kind,
        channel=channel,
        status=state.QUEUED,
        operator_id=operator_id,
        attempt_id=attempt_id,
        to_address=to,
        subject=composed.subject,
        text=composed.text,
        html=composed.html,
        message_id_header=(
            composer.message_id_header(lead.lead_id, message_id) if channel == "email" else None
        ),
        in_reply_to=in_reply_to,
        created_at=now,
        expires_at=now + valid_for,
        next_attempt_at=now,
        attempts=0,
        waiting_reason=waiting_reason(composer.settings, channel),
    )
