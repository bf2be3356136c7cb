"""Rendering a template as it would go out: for a given lead, or for a sample lead."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.leads.repository import LeadRepository
from qualify.messages.compose import Composer, facts_of
from qualify.problems import LeadNotFound
from qualify.templates.defaults import TemplateContent
from qualify.templates.schemas import EmailPreview, PreviewIn, PreviewOut, SmsPreview
from qualify.templates.variables import SAMPLE_VEHICLE, LeadFacts

SAMPLE_LEAD_ID = str(uuid.UUID(int=0))


async def preview(
    session: AsyncSession, composer: Composer, body: PreviewIn, now: datetime
) -> PreviewOut:
    if body.lead_id is not None:
        lead = await LeadRepository.from_session(session).get(body.lead_id)
        if lead is None:
            raise LeadNotFound()
        lead_id, facts = lead.lead_id, facts_of(lead)
        site = body.site if body.site is not None else lead.site
        source: str | None = body.source if body.source is not None else lead.source
    else:
        source = body.source or "leboncoin"
        site = body.site
        lead_id = SAMPLE_LEAD_ID
        facts = LeadFacts(
            first_name="Camille",
            full_name="Camille Durand",
            vehicle=SAMPLE_VEHICLE,
            ad_ref="AD-12345",
            site=site,
            due_at=composer.policy.due_at(source, now),
        )
    content = (
        TemplateContent(
            subject=body.content.subject, text=body.content.text, html=body.content.html
        )
        if body.content is not None
        else None
    )
    composed = await composer.compose(
        session,
        kind=body.kind,
        channel=body.channel,
        lead_id=lead_id,
        facts=facts,
        site=site,
        source=source,
        now=now,
        sender_name=body.sender_name,
        text=body.text,
        content=content,
    )
    out = PreviewOut(
        kind=body.kind,
        channel=body.channel,
        template_id=composed.template.template_id,
        scope=composed.template.scope,
        sample=body.lead_id is None,
        variables=composed.values,
    )
    if composed.email is not None:
        out.email = EmailPreview(
            subject=composed.email.subject,
            text=composed.email.text,
            html=composed.email.html,
            list_unsubscribe=composer.list_unsubscribe(lead_id),
        )
    if composed.sms is not None:
        out.sms = SmsPreview(
            text=composed.sms.text,
            encoding=composed.sms.encoding,
            segments=composed.sms.segments,
            truncated=composed.sms.truncated,
        )
    return out
