"""Payloads of the privacy topic (key = client id). Requests carry ids and keyed hashes; only an
export's share and a rectification (the corrected values) carry personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import Field, model_validator

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
    services: list[str] | None = Field(
        default=None,
        description=(
            "The services asked (absent: every participant). A re-ask names only the services "
            "whose answer crm has not received; the others ignore it."
        ),
    )


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


RectifiableField = Literal["full_name", "phone", "email"]


class ClientRectifiedV1(EventPayload):
    """Art. 16: a client's contact details were corrected in crm. Carries the NEW values of the
    fields named in ``fields`` (personal data; a field named with no value was removed); every
    service holding the leads replaces its copy, and dispatch tells the sellers' tools."""

    client_id: str
    lead_ids: list[str]
    fields: list[RectifiableField] = Field(min_length=1)
    full_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, description="E.164 phone number.")
    email: str | None = Field(default=None, max_length=254, description="Case-folded e-mail.")
    rectified_by: str = Field(description="Id of the token of who corrected it, never a name.")
    rectified_at: datetime

    @model_validator(mode="after")
    def _values_are_named(self) -> Self:
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("fields must not repeat")
        for name in ("full_name", "phone", "email"):
            if getattr(self, name) is not None and name not in self.fields:
                raise ValueError(f"{name} has a value but is not named in fields")
        return self
