"""Signed lead tokens: the part of a Reply-To plus-address and of a Message-ID that names a lead.

A token is ``<lead>.<mac>``: the lead id in lower-case base32 (16 bytes for a canonical UUID,
else its UTF-8) and the first 80 bits of ``HMAC-SHA256(key, label + lead id)``, also in base32.
Lower case throughout because mail systems may case-fold local parts: tokens are read back
case-insensitively. Without the key nobody can write a token for another lead, so a reply is
attached to a lead only on a token this system issued.

    reply address  concession+u<26>.<16>@vo-leads.test
    Message-ID     <m-<message key>.u<26>.<16>@vo-leads.test>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from email.utils import parseaddr

from pydantic import SecretStr

_LABEL = b"vo-leads/lead-token/v1\x00"
_MAC_BYTES = 10  # 80 bits: far beyond guessing, short enough for a 64-character local part
_MAX_LOCAL_PART = 64  # RFC 5321
_MESSAGE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^([us])([a-z2-7]+)\.([a-z2-7]{16})$")
# Tokens issued lately, by lead: one e-mail carries its lead's token four times (Message-ID,
# Reply-To, List-Unsubscribe, the VERP Return-Path), each an HMAC and two base32 encodings.
_REMEMBERED = 1024


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


@dataclass(frozen=True)
class MessageRef:
    """What a Message-ID we generated says: the lead and the sender's own key of the message."""

    lead_id: str
    message_key: str


class LeadTokens:
    """Issues and verifies lead tokens with one secret key (same value in every service)."""

    def __init__(self, key: bytes | str | SecretStr) -> None:
        if isinstance(key, SecretStr):
            key = key.get_secret_value()
        self._key = key.encode() if isinstance(key, str) else key
        if not self._key:
            raise ValueError("the lead token key is empty")
        self._issued: dict[str, str] = {}  # lead id → token, oldest first (``_REMEMBERED``)

    def _mac(self, lead_id: str) -> str:
        digest = hmac.new(self._key, _LABEL + lead_id.encode(), hashlib.sha256).digest()
        return _b32(digest[:_MAC_BYTES])

    def token(self, lead_id: str) -> str:
        issued = self._issued.get(lead_id)
        if issued is not None:
            return issued
        token = self._token(lead_id)
        if len(self._issued) >= _REMEMBERED:
            del self._issued[next(iter(self._issued))]
        self._issued[lead_id] = token
        return token

    def _token(self, lead_id: str) -> str:
        if not lead_id:
            raise ValueError("empty lead id")
        try:
            compact = str(uuid.UUID(lead_id)) == lead_id
        except ValueError:
            compact = False
        body = "u" + _b32(uuid.UUID(lead_id).bytes) if compact else "s" + _b32(lead_id.encode())
        return f"{body}.{self._mac(lead_id)}"

    def lead_of_token(self, token: str) -> str | None:
        """The lead id of a token this key issued, else None (never an unverified value)."""
        match = _TOKEN.match(token.strip().lower())
        if match is None:
            return None
        kind, body, mac = match.groups()
        try:
            raw = _unb32(body)
            lead_id = str(uuid.UUID(bytes=raw)) if kind == "u" else raw.decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(self._mac(lead_id), mac):
            return None
        return lead_id

    # --- plus-addresses -------------------------------------------------------------------

    def reply_address(self, lead_id: str, *, mailbox: str) -> str:
        """``mailbox`` (``user@domain``) with the lead's token as its plus-detail."""
        local, at, domain = mailbox.rpartition("@")
        if not at or not local or not domain or "+" in local:
            raise ValueError("the reply mailbox must be user@domain without a +detail")
        local_part = f"{local}+{self.token(lead_id)}"
        if len(local_part) > _MAX_LOCAL_PART:
            raise ValueError("the reply address would exceed 64 characters before the @")
        return f"{local_part}@{domain}"

    def lead_of_address(self, address: str) -> str | None:
        """The lead of a plus-address we issued (display name and angle brackets allowed)."""
        addr = parseaddr(address)[1] or address
        local, at, _domain = addr.strip().rpartition("@")
        if not at or "+" not in local:
            return None
        return self.lead_of_token(local.split("+", 1)[1])

    # --- Message-IDs ----------------------------------------------------------------------

    def message_id(self, lead_id: str, *, message_key: str, domain: str) -> str:
        """``<m-{message_key}.{token}@{domain}>``: unique per message key, tied to the lead."""
        if not _MESSAGE_KEY.match(message_key):
            raise ValueError("message_key must be 1-64 characters of [A-Za-z0-9_-]")
        if not domain or any(char in domain for char in "<>@ "):
            raise ValueError("invalid Message-ID domain")
        return f"<m-{message_key}.{self.token(lead_id)}@{domain}>"

    def ref_of_message_id(self, message_id: str) -> MessageRef | None:
        """The lead and message key of a Message-ID we generated, else None."""
        text = message_id.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        left, at, _domain = text.rpartition("@")
        if not at or not left.lower().startswith("m-"):
            return None
        parts = left[2:].split(".")
        if len(parts) != 3:
            return None
        message_key, body, mac = parts
        lead_id = self.lead_of_token(f"{body}.{mac}")
        if lead_id is None or not _MESSAGE_KEY.match(message_key):
            return None
        return MessageRef(lead_id=lead_id, message_key=message_key)

    def lead_of_message_id(self, message_id: str) -> str | None:
        ref = self.ref_of_message_id(message_id)
        return ref.lead_id if ref else None
