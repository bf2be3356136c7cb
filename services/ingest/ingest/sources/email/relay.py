"""A marketplace's relay address: where an answer reaches a buyer who wrote through the portal's
messaging (La Centrale: ``<uuid>@messagerie.lacentrale.fr``, as the contact's e-mail or as the
notification's ``Reply-To``). It reaches the person but identifies nobody, so it is never an
identity key (``email_key`` stays empty); ``lead.received.v1`` carries it as ``relay_email``.

Leboncoin's messaging notifications carry no reply address (the buyer is answered inside the
portal; docs/ingest.md), so its leads have none unless a relay domain below appears.
"""

from __future__ import annotations

from dataclasses import replace

from ingest.canonical import LeadDraft, Outcome
from ingest.canonical.contacts import is_relay, normalize_email
from ingest.sources.email.mime import InboundEmail


def relay_address(mail: InboundEmail, draft: LeadDraft) -> str | None:
    """The contact's own e-mail when it is a relay, else a relay ``Reply-To``."""
    if draft.contact.email and draft.contact.email_is_relay:
        return draft.contact.email
    reply_to = normalize_email(mail.reply_to)
    if reply_to is not None and is_relay(reply_to):
        return reply_to
    return None


def with_relay(mail: InboundEmail, outcome: Outcome) -> Outcome:
    if not isinstance(outcome, LeadDraft) or outcome.relay_email is not None:
        return outcome
    relay = relay_address(mail, outcome)
    return outcome if relay is None else replace(outcome, relay_email=relay)
