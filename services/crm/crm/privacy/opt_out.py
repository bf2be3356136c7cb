"""A prospect's opt-out (an SMS STOP, an unsubscribe reply or link, ``lead.opted-out.v1`` from
qualify) becomes an objection on the do-not-contact list for that channel's contact, announced
to every service like one recorded through the API. The step joins the client's timeline too."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.repository import ClientRepository
from crm.clients.timeline import on_lead_event
from crm.privacy.objections import record_objection
from crm.privacy.schemas import ObjectionIn
from crm.settings import CrmSettings
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import LeadOptedOutV1
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

OPTED_OUT = "lead.opted-out.v1"


def opted_out_handler(runtime: Runtime[CrmSettings]) -> Handler:
    hmac_key = runtime.settings.privacy_hmac_key.get_secret_value().encode()

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        await on_lead_event(session, envelope)
        event = LeadOptedOutV1.model_validate(envelope.data)
        client = await ClientRepository.from_session(session).client_of_lead(event.lead_id)
        contact = None
        if client is not None:
            contact = client.phone if event.channel == "sms" else client.email
        if contact is None:
            # Erased meanwhile, or the channel's contact is not known here: qualify has already
            # stopped its messages; there is nothing for crm to key an objection on.
            log.info("objection.opt_out_without_contact", lead_id=event.lead_id)
            return
        body = (
            ObjectionIn(phone=contact, reason="opt_out")
            if event.channel == "sms"
            else ObjectionIn(email=contact, reason="opt_out")
        )
        await record_objection(
            session,
            runtime.outbox,
            body=body,
            recorded_by=f"prospect:{event.via}",
            hmac_key=hmac_key,
            now=event.opted_out_at,
        )
        log.info("objection.opt_out_recorded", lead_id=event.lead_id, channel=event.channel)

    return handle
