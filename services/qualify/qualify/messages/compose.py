"""Composing a message for a lead: the template that applies, its variables, the rendering
(e-mail with footer and unsubscribe link, SMS with the opt-out line within the segment budget)
and the headers that tie answers back to the lead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from qualify.messages.state import TemplateKind
from qualify.models import QueuedLead
from qualify.policy import Policy
from qualify.settings import QualifySettings
from qualify.templates.defaults import TemplateContent
from qualify.templates.problems import invalid_template
from qualify.templates.rendering import (
    RenderedEmail,
    RenderedSms,
    TemplateError,
    check,
    placeholders,
    render_email,
    render_sms,
)
from qualify.templates.service import ResolvedTemplate, resolve
from qualify.templates.variables import LeadFacts, values_for
from shared.events.payloads import MessageChannel
from shared.messaging.lead_tokens import LeadTokens
from shared.messaging.outgoing_email import Unsubscribe


@dataclass(frozen=True)
class Composed:
    template: ResolvedTemplate
    values: dict[str, str]
    email: RenderedEmail | None = None
    sms: RenderedSms | None = None

    @property
    def subject(self) -> str | None:
        return self.email.subject if self.email is not None else None

    @property
    def text(self) -> str:
        if self.email is not None:
            return self.email.text
        assert self.sms is not None
        return self.sms.text

    @property
    def html(self) -> str | None:
        return self.email.html if self.email is not None else None


@lru_cache(maxsize=256)
def _checked(
    content: TemplateContent, kind: TemplateKind
) -> tuple[tuple[TemplateError, ...], bool]:
    """A template's own errors (``check``) and whether it needs ``text``: the same for every
    message it composes, so worked out once per content (every new lead's first answer
    composes the same few templates)."""
    fields: list[Any] = [content.subject, content.text, content.html]
    names = {name for field in fields if field for name in placeholders(field)}
    return tuple(check(content, kind)), "text" in names


def facts_of(lead: QueuedLead) -> LeadFacts:
    return LeadFacts(
        first_name=lead.first_name,
        full_name=lead.full_name,
        vehicle=lead.vehicle,
        ad_ref=lead.ad_ref,
        site=lead.site,
        due_at=lead.due_at,
    )


class Composer:
    """Built once per process from the settings and the policy (``runtime.provide``)."""

    def __init__(self, settings: QualifySettings, policy: Policy) -> None:
        self.settings = settings
        self.policy = policy
        self.tokens = LeadTokens(settings.lead_token_key)
        self.zone = ZoneInfo(settings.call_centre_timezone)

    # --- headers tying answers to the lead ---------------------------------------------------

    def unsubscribe(self, lead_id: str) -> Unsubscribe | None:
        """Both ways to object when qualify's public URL is https (RFC 8058), else None."""
        base = self.settings.message_public_base_url
        if base is None or not base.startswith("https://"):
            return None
        return Unsubscribe.for_lead(
            self.tokens,
            lead_id,
            mailbox=self.settings.message_reply_mailbox,
            url_base=f"{base}/v1/unsubscribe",
        )

    def unsubscribe_mailto(self, lead_id: str) -> str:
        address = self.tokens.reply_address(lead_id, mailbox=self.settings.message_reply_mailbox)
        return f"<mailto:{address}?subject=unsubscribe>"

    def list_unsubscribe(self, lead_id: str) -> str:
        unsubscribe = self.unsubscribe(lead_id)
        return unsubscribe.header() if unsubscribe is not None else self.unsubscribe_mailto(lead_id)

    def message_id_header(self, lead_id: str, message_id: str) -> str:
        domain = self.settings.message_reply_mailbox.rpartition("@")[2]
        return self.tokens.message_id(lead_id, message_key=message_id, domain=domain)

    # --- rendering ---------------------------------------------------------------------------

    async def compose(
        self,
        session: AsyncSession,
        *,
        kind: TemplateKind,
        channel: MessageChannel,
        lead_id: str,
        facts: LeadFacts,
        site: str | None,
        source: str | None,
        now: datetime,
        sender_name: str | None = None,
        text: str | None = None,
        content: TemplateContent | None = None,
        template: ResolvedTemplate | None = None,
    ) -> Composed:
        """Render the template of (kind, channel) that applies to the lead (``template`` when
        the caller resolved it already), or ``content``. A template that names an unknown
        variable, or needs ``text`` it was not given, is a 422."""
        if content is not None:
            resolved = ResolvedTemplate(content, None, "given")
        elif template is not None:
            resolved = template
        else:
            resolved = await resolve(session, kind, channel, site=site, source=source)
        found, needs_text = _checked(resolved.content, kind)
        errors = list(found)
        if needs_text and not (text or "").strip():
            errors.append(TemplateError("text", "missing", "this template needs the text"))
        if errors:
            raise invalid_template(errors)
        values = values_for(
            facts,
            settings=self.settings,
            zone=self.zone,
            now=now,
            sender_name=sender_name,
            text=text,
        )
        settings = self.settings
        if channel == "email":
            unsubscribe = self.unsubscribe(lead_id)
            email = render_email(
                resolved.content,
                values,
                dealer_name=settings.message_dealer_name,
                unsubscribe_url=unsubscribe.url if unsubscribe is not None else None,
            )
            return Composed(resolved, values, email=email)
        sms = render_sms(
            resolved.content,
            values,
            opt_out=settings.message_sms_opt_out,
            max_segments=settings.message_sms_max_segments,
        )
        return Composed(resolved, values, sms=sms)
