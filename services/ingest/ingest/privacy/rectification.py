"""Rectification (GDPR Art. 16), ingest's share: on ``privacy.client-rectified.v1`` (crm) the
contact of each stored canonical lead takes the corrected values, with the fields derived from
them (the matching key, the relay flag, the number as written).

What a source sent stays as received: the raw input (``raw_input.body``) is the audit record of
the receipt, not a copy ingest serves or re-publishes; it holds the old value until its
retention purge (INGEST_RAW_INPUT_RETENTION_DAYS) or an erasure deletes it. A marketplace's relay
address (``relay_email``) is where answers go, not the person's address: it stays too.

Idempotent on its data (the shared consumer also skips a redelivered event id): a lead already
holding the corrected values is left alone.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.leads.repository import LeadRepository
from ingest.models import Lead
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.privacy import ClientRectifiedV1

log = structlog.get_logger(__name__)

CLIENT_RECTIFIED = "privacy.client-rectified.v1"


def correct(lead: Lead, event: ClientRectifiedV1) -> bool:
    """Apply the event's values to ``lead``; True when something changed."""
    before = _contact(lead)
    for name in event.fields:
        if name == "full_name":
            # The event carries the whole name: its parts held here may carry the error.
            lead.full_name, lead.first_name, lead.last_name = event.full_name, None, None
        elif name == "phone":
            lead.phone, lead.phone_raw = event.phone, None
        else:
            lead.email, lead.email_key, lead.email_is_relay = event.email, event.email, False
    return _contact(lead) != before


def _contact(lead: Lead) -> tuple[object, ...]:
    return (
        lead.first_name,
        lead.last_name,
        lead.full_name,
        lead.phone,
        lead.phone_raw,
        lead.email,
        lead.email_key,
        lead.email_is_relay,
    )


async def rectify(session: AsyncSession, event: ClientRectifiedV1) -> int:
    """Correct the stored leads named by the event; returns how many changed."""
    leads = LeadRepository.from_session(session)
    changed = 0
    for lead_id in sorted(set(event.lead_ids)):
        lead = await leads.get(lead_id)
        if lead is not None and correct(lead, event):  # None: not ingest's, or erased
            changed += 1
    log.info("ingest.client_rectified", leads=changed, fields=list(event.fields))
    return changed


def rectification_handler() -> Handler:
    async def on_client_rectified(session: AsyncSession, envelope: Envelope) -> None:
        await rectify(session, ClientRectifiedV1.model_validate(envelope.data))

    return on_client_rectified
