"""Is an inbound e-mail part of a lead's conversation? Read before any lead parser: a reply to
one of qualify's messages, or a bounce of one, must never become a new lead.

Only signed clues count (``shared.messaging.inbound_match``, ``lead_tokens``): our plus-address
among the recipients, or one of our Message-IDs in In-Reply-To/References; for a bounce, our
Message-ID in the returned headers. Anything else is ``None`` and goes on to the lead parsers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

import structlog

from ingest.conversations.reply_text import asks_to_stop, new_text
from ingest.sources.email.classifier import ignore_reason
from ingest.sources.email.mime import (
    InboundEmail,
    MimeLimits,
    decode_header,
    message_from_bytes,
    parse_mime,
)
from shared.messaging.bounces import parse_bounce
from shared.messaging.inbound_match import RECIPIENT_HEADERS, lead_from_clues
from shared.messaging.lead_tokens import LeadTokens

log = structlog.get_logger(__name__)

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_HEADER_MAX = 998  # RFC 5322 line limit: the event's bound for subject and Message-ID


@dataclass(frozen=True)
class EmailReply:
    lead_id: str
    message_id: str  # ingest's id of the reply (stable across redeliveries)
    sender: str
    subject: str | None
    text: str
    answers: str | None  # qualify's message id quoted in In-Reply-To/References
    email_message_id: str | None
    stop_request: bool


@dataclass(frozen=True)
class EmailBounce:
    lead_id: str
    message_id: str  # ingest's id of the report (stable across redeliveries)
    bounced: str  # qualify's message id, from our Message-ID in the report
    hard: bool
    status: str | None
    smtp_code: int | None


@dataclass(frozen=True)
class Unanswerable:
    """Tied to a lead (or a bounce), but nothing to tell: recorded as ignored with ``reason``."""

    reason: str
    lead_id: str | None


ConversationMail = EmailReply | EmailBounce | Unanswerable


def stable_id(prefix: str, lead_id: str, message_id: str | None, raw: bytes) -> str:
    """``<prefix>-<hash>`` of the lead and the message's own Message-ID (else its bytes): the
    same message delivered twice, or read again over IMAP, gets the same id."""
    key = message_id.strip() if message_id and message_id.strip() else None
    basis = key or "sha256:" + hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256(f"{lead_id}\0{basis}".encode()).hexdigest()
    return f"{prefix}-{digest[:40]}"


def read_conversation_mail(
    raw: bytes, tokens: LeadTokens, limits: MimeLimits = MimeLimits()
) -> ConversationMail | None:
    """The conversation message in ``raw``, or None (a new input for the lead parsers). Never
    raises: a failure here leaves the message to the parsers, which keep it (quarantine). The
    message is parsed within ``limits``: beyond them (``MimeTooComplex``) the lead parsers
    quarantine it (``mime_too_complex``) for the cost of its first parts."""
    try:
        return _read(raw, tokens, limits)
    except Exception as exc:
        log.warning("conversation.read_failed", error_type=type(exc).__name__)
        return None


def lead_of_message(message: Message, tokens: LeadTokens) -> str | None:
    """``inbound_match.lead_of_message`` on decoded header values: some senders (Python's own
    e-mail package among them) RFC 2047-encode a long In-Reply-To or References."""

    def values(name: str) -> list[str]:
        return [decode_header(value) for value in message.get_all(name, [])]

    return lead_from_clues(
        tokens,
        recipients=[value for name in RECIPIENT_HEADERS for value in values(name)],
        in_reply_to=" ".join(values("in-reply-to")),
        references=" ".join(values("references")),
    )


def _read(raw: bytes, tokens: LeadTokens, limits: MimeLimits) -> ConversationMail | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)  # the headers only: cheap
    if headers.get_content_type() == "multipart/report":
        return _bounce(message_from_bytes(raw, limits), raw, tokens)
    lead_id = lead_of_message(headers, tokens)
    if lead_id is None:
        return None
    mail = parse_mime(raw, limits)
    reason = ignore_reason(mail)
    if reason in ("auto_reply", "bounce"):
        # An out-of-office answer or a non-standard bounce sent to the lead's address: not the
        # prospect speaking, and not readable as a report.
        return Unanswerable(reason, lead_id)
    return _reply(mail, lead_id, raw, tokens)


def _answered(tokens: LeadTokens, lead_id: str, mail: InboundEmail) -> str | None:
    """qualify's message id this answers: In-Reply-To, then References newest first."""
    headers = mail.headers
    quoted = _MESSAGE_ID.findall(headers.get("in-reply-to", ""))
    quoted += list(reversed(_MESSAGE_ID.findall(headers.get("references", ""))))
    for message_id in quoted:
        ref = tokens.ref_of_message_id(message_id)
        if ref is not None and ref.lead_id == lead_id:
            return ref.message_key
    return None


def _reply(mail: InboundEmail, lead_id: str, raw: bytes, tokens: LeadTokens) -> EmailReply:
    own_id = mail.headers.get("message-id", "").strip()
    subject = mail.subject.strip()[:_HEADER_MAX] or None
    text = new_text(mail.text)
    return EmailReply(
        lead_id=lead_id,
        message_id=stable_id("email", lead_id, own_id, raw),
        sender=(mail.from_addr or mail.reply_to or "")[:320],
        subject=subject,
        text=text,
        answers=_answered(tokens, lead_id, mail),
        email_message_id=own_id[:_HEADER_MAX] or None,
        stop_request=asks_to_stop(subject, text),
    )


def _bounce(message: Message, raw: bytes, tokens: LeadTokens) -> ConversationMail | None:
    bounce = parse_bounce(message)
    lead_id = lead_of_message(message, tokens)  # our VERP Return-Path, when it came back there
    if bounce is None:
        return Unanswerable("report_unreadable", lead_id) if lead_id else None
    ref = tokens.ref_of_message_id(bounce.original_message_id or "")
    if ref is None:
        # Not one of our Message-IDs: a report about someone else's mail, or a foreign MTA that
        # returned no headers (then the VERP address still names the lead, not the message).
        return Unanswerable("bounce_message_unknown" if lead_id else "bounce_not_ours", lead_id)
    failures = [r for r in bounce.recipients if r.action in ("failed", "delayed")]
    if not failures:
        return Unanswerable("delivery_report", ref.lead_id)  # "delivered", "relayed"…
    worst = next((r for r in failures if r.hard), failures[0])
    own_id = str(message.get("message-id") or "")
    return EmailBounce(
        lead_id=ref.lead_id,
        message_id=stable_id("dsn", ref.lead_id, own_id, raw),
        bounced=ref.message_key,
        hard=bounce.hard,
        status=worst.status,
        smtp_code=worst.smtp_code,
    )
