"""Matching an inbound e-mail back to a lead, from what our outgoing messages carried.

Two clues, both signed (``lead_tokens``): the plus-address of our Reply-To, found among the
recipients (To, Cc, Delivered-To, X-Original-To, Envelope-To), and our Message-ID quoted in
In-Reply-To or References. A token that does not verify is ignored: an unsigned or forged value
never attaches a message to a lead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from email.message import Message
from email.utils import getaddresses

from shared.messaging.lead_tokens import LeadTokens

RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "to", "cc")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def lead_from_clues(
    tokens: LeadTokens, *, recipients: Iterable[str], in_reply_to: str = "", references: str = ""
) -> str | None:
    """The lead named by the first verified clue: a recipient plus-address, then the Message-ID
    answered (In-Reply-To), then the thread's Message-IDs, newest first (References)."""
    for _name, address in getaddresses(list(recipients)):
        lead_id = tokens.lead_of_address(address)
        if lead_id is not None:
            return lead_id
    quoted = _MESSAGE_ID.findall(in_reply_to) + list(reversed(_MESSAGE_ID.findall(references)))
    for message_id in quoted:
        lead_id = tokens.lead_of_message_id(message_id)
        if lead_id is not None:
            return lead_id
    return None


def lead_of_message(message: Message, tokens: LeadTokens) -> str | None:
    """The lead an inbound e-mail answers, or None."""
    recipients = [str(value) for name in RECIPIENT_HEADERS for value in message.get_all(name, [])]
    return lead_from_clues(
        tokens,
        recipients=recipients,
        in_reply_to=" ".join(str(value) for value in message.get_all("in-reply-to", [])),
        references=" ".join(str(value) for value in message.get_all("references", [])),
    )


def lead_of_headers(headers: Mapping[str, str], tokens: LeadTokens) -> str | None:
    """The same from decoded headers, one value per lower-case name (e.g. ingest's parsed mail)."""
    return lead_from_clues(
        tokens,
        recipients=[headers[name] for name in RECIPIENT_HEADERS if headers.get(name)],
        in_reply_to=headers.get("in-reply-to", ""),
        references=headers.get("references", ""),
    )
