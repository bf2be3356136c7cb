"""Qualify's tables: the operators' queue (one row per lead, with its claim), contact attempts and
qualifications, plus the shared infrastructure tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from qualify.leads.state import LeadStatus
from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime
from shared.events.payloads import (
    AttemptOutcome,
    ContactChannel,
    DisqualificationReason,
    LeadKind,
    LeadSource,
)


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class QueuedLead(Base):
    """A lead waiting for (or handled by) a digital operator. Personal data: contact, message.

    ``is_open`` is true while the lead waits for a decision (status waiting or contacting); the
    queue reads the index (is_open, due_at, lead_id). A claim is the triple claimed_by /
    claimed_at / claim_expires_at; an expired claim is no claim (the lead is back in the queue).
    """

    __tablename__ = "queued_lead"
    __table_args__ = (
        Index("ix_queued_lead_queue", "is_open", "due_at", "lead_id"),
        Index("ix_queued_lead_queue_source", "is_open", "source", "due_at", "lead_id"),
        Index("ix_queued_lead_handled", "handled_by", "closed_at"),
        Index("ix_queued_lead_claimed_by", "claimed_by"),
        Index("ix_queued_lead_phone", "phone"),
    )

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[LeadStatus] = mapped_column(String(16))
    is_open: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[LeadKind] = mapped_column(String(16))
    source: Mapped[LeadSource] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    site: Mapped[str | None] = mapped_column(String(64))
    full_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    ad_ref: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    claimed_by_name: Mapped[str | None] = mapped_column(String(120))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claim_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_attempt_by: Mapped[str | None] = mapped_column(String(36))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    unanswered_count: Mapped[int] = mapped_column(Integer, default=0)
    handled_by: Mapped[str | None] = mapped_column(String(36))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    disqualification_reason: Mapped[DisqualificationReason | None] = mapped_column(String(32))
    duplicate_of: Mapped[str | None] = mapped_column(String(36))
    disqualification_note: Mapped[str | None] = mapped_column(Text)


class ContactAttempt(Base):
    """One call, SMS or e-mail to the lead's contact, with its outcome. Personal data: note."""

    __tablename__ = "contact_attempt"
    __table_args__ = (
        Index("ix_contact_attempt_lead", "lead_id", "attempted_at"),
        Index("ix_contact_attempt_operator", "operator_id", "attempted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("queued_lead.lead_id", ondelete="CASCADE"))
    operator_id: Mapped[str] = mapped_column(String(36))
    operator_name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[ContactChannel] = mapped_column(String(16))
    outcome: Mapped[AttemptOutcome] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    exemption: Mapped[str | None] = mapped_column(String(32))
    consumer_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Qualification(Base):
    """What the operator found out; ``data`` is the validated body (personal data inside)."""

    __tablename__ = "qualification"

    lead_id: Mapped[str] = mapped_column(
        ForeignKey("queued_lead.lead_id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[str] = mapped_column(String(36))
    operator_name: Mapped[str] = mapped_column(String(120))
    qualified_at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


metadata = Base.metadata


class SuppressedContact(Base):
    """A contact on crm's do-not-contact list: the keyed hash only, never the phone or e-mail."""

    __tablename__ = "suppressed_contact"

    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    suppressed_at: Mapped[datetime] = mapped_column(UtcDateTime())
