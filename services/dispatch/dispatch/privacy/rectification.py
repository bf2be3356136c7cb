"""Rectification (GDPR Art. 16), dispatch's share: on ``privacy.client-rectified.v1`` (crm) the
contact inside the stored qualification of each lead is corrected, so are its keyed hashes
(objections keep matching) and the messages kept for retries, replay and the sellers' feed (a
replay never sends the old value); then every seller whose tool received the lead is sent a
signed ``lead.updated`` with the corrected contact.

Idempotent on its data: a lead whose contact already holds the corrected values is left alone
(no second webhook), whatever the event id.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.repository import AssignmentRepository
from dispatch.directory.repository import DirectoryRepository
from dispatch.models import DispatchLead
from dispatch.privacy.contacts import contact_hashes
from dispatch.privacy.repository import PrivacyRepository
from dispatch.settings import DispatchSettings
from dispatch.timers.kinds import FOLLOWUP
from dispatch.timers.repository import TimerRepository
from dispatch.webhooks.service import LEAD_UPDATED, queue_webhook, render_body
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import ContactV1
from shared.events.privacy import ClientRectifiedV1

log = structlog.get_logger(__name__)

CLIENT_RECTIFIED = "privacy.client-rectified.v1"


def corrected_contact(contact: dict[str, Any], event: ClientRectifiedV1) -> dict[str, Any]:
    """The contact with the event's new values. A corrected full name drops the first and last
    names held beside it (they may carry the error; the event does not say)."""
    corrected = dict(contact)
    for name in event.fields:
        corrected[name] = getattr(event, name)
        if name == "full_name":
            corrected["first_name"] = None
            corrected["last_name"] = None
    return ContactV1.model_validate(corrected).model_dump(mode="json")


async def rectify(
    session: AsyncSession, event: ClientRectifiedV1, *, key: bytes, now: datetime
) -> int:
    """Correct the leads' contact and tell the sellers' tools; returns how many leads changed."""
    leads = AssignmentRepository(session)
    privacy = PrivacyRepository(session)
    directory = DirectoryRepository(session)
    changed = 0
    for lead_id in sorted(set(event.lead_ids)):
        lead = await leads.lead(lead_id)
        if lead is None:
            continue  # not routed here, or erased
        before = dict(lead.qualification.get("contact") or {})
        contact = corrected_contact(before, event)
        if contact == ContactV1.model_validate(before).model_dump(mode="json"):
            continue  # already corrected (a redelivery, or the same values)
        lead.qualification = {**lead.qualification, "contact": contact}
        lead.updated_at = now
        hashes = contact_hashes(ContactV1.model_validate(contact), key)
        await privacy.replace_contact_keys(lead_id, hashes)
        if not lead.followups_blocked and await privacy.is_suppressed(hashes):
            # The corrected phone or e-mail is one that objected: no more follow-ups.
            lead.followups_blocked = True
            await TimerRepository(session).cancel(now=now, lead_id=lead_id, kinds=(FOLLOWUP,))
        for seller_id in await _correct_kept_messages(privacy, lead, contact):
            seller = await directory.seller(seller_id)
            if seller is None:
                continue
            await queue_webhook(
                session,
                seller,
                LEAD_UPDATED,
                {
                    "lead_id": lead_id,
                    "contact": contact,
                    "fields": list(event.fields),
                    "rectified_at": event.rectified_at.isoformat(),
                },
                now=now,
                lead_id=lead_id,
            )
        changed += 1
    log.info("dispatch.client_rectified", leads=changed, fields=list(event.fields))
    return changed


async def _correct_kept_messages(
    privacy: PrivacyRepository, lead: DispatchLead, contact: dict[str, Any]
) -> list[str]:
    """Messages that carry the lead's qualification (offers, direct assignments) get the
    corrected contact; their id and time stay (a retry or replay signs the new body). Returns
    the sellers whose tools received the contact (ordered)."""
    holders: set[str] = set()
    for message in await privacy.messages_of_lead(lead.lead_id):
        body: dict[str, Any] = json.loads(message.body)
        data = body.get("data")
        if not isinstance(data, dict):
            continue
        carried = data.get("lead")
        if not isinstance(carried, dict) or "contact" not in carried:
            continue
        carried["contact"] = contact
        message.body = render_body(
            str(body.get("type")), data, datetime.fromisoformat(str(body.get("timestamp")))
        )
        holders.add(message.seller_id)
    return sorted(holders)


def rectification_handler(settings: DispatchSettings, clock: Clock) -> Handler:
    key = settings.privacy_hmac_key.get_secret_value().encode()

    async def on_client_rectified(session: AsyncSession, envelope: Envelope) -> None:
        event = ClientRectifiedV1.model_validate(envelope.data)
        await rectify(session, event, key=key, now=clock())

    return on_client_rectified
