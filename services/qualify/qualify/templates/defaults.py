"""The built-in French templates, per kind and channel. Admins override them per site and per
source (``message_template``); what they do not override, these say.

Every e-mail also gets a footer naming the dealer with the way to unsubscribe, and every SMS the
opt-out line (``QUALIFY_MESSAGE_SMS_OPT_OUT``): added at rendering, whatever the template says.
"""

from __future__ import annotations

from dataclasses import dataclass

from qualify.messages.state import TemplateKind
from shared.events.payloads import MessageChannel


@dataclass(frozen=True)
class TemplateContent:
    subject: str | None  # e-mail only
    text: str
    html: str | None = None  # e-mail only; None: made from the text


DEFAULTS: dict[tuple[TemplateKind, MessageChannel], TemplateContent] = {
    ("first_answer", "email"): TemplateContent(
        subject="Votre demande : {{vehicle}}",
        text=(
            "{{greeting}},\n\n"
            "Merci pour votre demande concernant : {{vehicle}}. Nous l'avons bien reçue.\n\n"
            "Un conseiller de {{dealer_name}} vous appelle {{call_time}}.\n"
            "{{callback}}\n\n"
            "Vous pouvez aussi répondre directement à cet e-mail.\n\n"
            "À très vite,\n"
            "{{dealer_name}}"
        ),
    ),
    ("first_answer", "sms"): TemplateContent(
        subject=None,
        text=(
            "{{greeting}}, merci pour votre demande ({{vehicle}}). "
            "{{dealer_name}} vous appelle {{call_time}}."
        ),
    ),
    ("follow_up", "email"): TemplateContent(
        subject="Nous avons essayé de vous joindre",
        text=(
            "{{greeting}},\n\n"
            "Nous avons essayé de vous joindre au sujet de votre demande concernant : "
            "{{vehicle}}.\n\n"
            "Quand pouvons-nous vous rappeler ? Répondez simplement à cet e-mail.\n"
            "{{callback}}\n\n"
            "{{sender_name}}\n"
            "{{dealer_name}}"
        ),
    ),
    ("follow_up", "sms"): TemplateContent(
        subject=None,
        text=(
            "{{greeting}}, nous avons essayé de vous joindre pour votre demande ({{vehicle}}). "
            "Quand pouvons-nous vous rappeler ? {{sender_name}}, {{dealer_name}}"
        ),
    ),
    ("operator_reply", "email"): TemplateContent(
        subject="Votre demande : {{vehicle}}",
        text="{{greeting}},\n\n{{text}}\n\n{{sender_name}}\n{{dealer_name}}",
    ),
    ("operator_reply", "sms"): TemplateContent(
        subject=None, text="{{text}} {{sender_name}}, {{dealer_name}}"
    ),
}
