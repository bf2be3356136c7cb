"""Payloads of the privacy topic (key = client id). They carry ids and keyed hashes, never the
personal data itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from shared.events.payloads import EventPayload


class ErasureRequestedV1(EventPayload):
    """Art. 17: every service deletes or anonymises what it holds on these leads and keys."""

    request_id: str
    client_id: str
    lead_ids: list[str]
    contact_hashes: list[str] = Field(
        default_factory=list,
        description="HMAC-SHA256 (shared key) of the E.164 phones and case-folded e-mails.",
    )
    requested_at: datetime


class ErasureCompletedV1(EventPayload):
    """One service's answer to an erasure request: what it erased (counts per store)."""

    request_id: str
    client_id: str
    service: str
    erased: dict[str, int]
    completed_at: datetime


class ContactSuppressedV1(EventPayload):
    """Art. 21 objection / do-not-contact: only the answer to the person's own new enquiry is
    allowed from now on; follow-ups and marketing are blocked."""

    contact_hashes: list[str] = Field(min_length=1)
    reason: str
    suppressed_at: datetime


class ExportRequestedV1(EventPayload):
    """Art. 15/20: every service sends what it holds on these leads."""

    request_id: str
    client_id: str
    lead_ids: list[str]
    requested_at: datetime


class ExportProvidedV1(EventPayload):
    """One service's share of an export: rows per store. Carries personal data."""

    request_id: str
    client_id: str
    service: str
    data: dict[str, list[dict[str, Any]]]
    provided_at: datetime
