"""Reading a bounce: a delivery status notification (RFC 3464, a ``multipart/report`` with
``report-type=delivery-status``).

What a sender needs: which of our messages bounced (the original Message-ID, from the returned
message or its headers), for which recipient, with which status code, and whether it is hard
(``failed`` with a 5.x.x status: the address is unreachable) or soft (4.x.x, or ``delayed``).
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
_ACTIONS: dict[str, Action] = {
    "failed": "failed",
    "delayed": "delayed",
    "delivered": "delivered",
    "relayed": "relayed",
    "expanded": "expanded",
}
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"^\s*smtp\s*;\s*([245]\d\d)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str  # Final-Recipient (the address as the reporting MTA saw it)
    original_recipient: str | None  # Original-Recipient, when the MTA kept it
    action: Action
    status: str  # e.g. "5.1.1"
    smtp_code: int | None  # from Diagnostic-Code "smtp; 550 …" when given

    @property
    def hard(self) -> bool:
        """A permanent failure: the address should be marked unreachable."""
        return self.action == "failed" and self.status.startswith("5")

    @property
    def soft(self) -> bool:
        """A temporary failure or a delay: the message may still arrive."""
        return self.action == "delayed" or self.status.startswith("4")


@dataclass(frozen=True)
class Bounce:
    original_message_id: str | None  # with its angle brackets, as in our Message-ID header
    reporting_mta: str | None
    recipients: tuple[RecipientStatus, ...]

    @property
    def hard(self) -> bool:
        return any(recipient.hard for recipient in self.recipients)

    @property
    def failed(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if r.action == "failed")


def _fields(block: Message) -> dict[str, str]:
    return {name.lower(): " ".join(str(value).split()) for name, value in block.items()}


def _address(field: str | None) -> str | None:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    if not field:
        return None
    _kind, _, address = field.partition(";")
    return (address or field).strip().strip("<>") or None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Some parsers leave the report as text: blocks separated by blank lines.
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", text) if chunk]


def _original_message_id(report: Message) -> str | None:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                value = inner[0].get("message-id")
                return " ".join(str(value).split()) if value else None
        elif content_type == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            headers = email.message_from_bytes(raw if isinstance(raw, bytes) else b"")
            value = headers.get("message-id")
            return " ".join(str(value).split()) if value else None
    return None


def parse_bounce(message: Message) -> Bounce | None:
    """The delivery status report in ``message``, or None when it is not an RFC 3464 DSN."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    status_part = next(
        (part for part in message.walk() if part.get_content_type() == "message/delivery-status"),
        None,
    )
    if status_part is None:
        return None
    blocks = [_fields(block) for block in _status_blocks(status_part)]
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    recipients: list[RecipientStatus] = []
    for fields in per_recipient:
        action = _ACTIONS.get(fields.get("action", "").lower())
        status = _STATUS.match(fields.get("status", ""))
        recipient = _address(fields.get("final-recipient"))
        if action is None or status is None or recipient is None:
            continue
        smtp_code = _SMTP_CODE.match(fields.get("diagnostic-code", ""))
        recipients.append(
            RecipientStatus(
                recipient=recipient,
                original_recipient=_address(fields.get("original-recipient")),
                action=action,
                status=".".join(status.groups()),
                smtp_code=int(smtp_code.group(1)) if smtp_code else None,
            )
        )
    if not recipients:
        return None
    return Bounce(
        original_message_id=_original_message_id(message),
        reporting_mta=_address(per_message.get("reporting-mta")),
        recipients=tuple(recipients),
    )


def parse_bounce_bytes(raw: bytes) -> Bounce | None:
    return parse_bounce(email.message_from_bytes(raw))
