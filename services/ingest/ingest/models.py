"""Ingest's tables: raw inputs, canonical leads, quarantine, ignored inputs, pending Facebook
fetches, the prospects' replies and bounces matched to leads, the SMS sent to leads, plus the
shared infrastructure tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ingest.quarantine.schemas import QuarantineStatus
from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime
from shared.events.payloads import LeadKind, LeadSource, MessageChannel

# What became of a raw input ("fetching": a Lead Ads notification whose leads the worker fetches;
# "reply"/"bounce": a message of a lead's conversation, ``inbound_message``).
RawOutcome = Literal["pending", "fetching", "lead", "ignored", "quarantined", "reply", "bounce"]
InboundKind = Literal["reply", "bounce"]
FetchStatus = Literal["pending", "done", "quarantined"]


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class Lead(Base):
    """A canonical lead. Personal data: contact fields, message, extra (erasure and retention)."""

    __tablename__ = "lead"
    __table_args__ = (UniqueConstraint("source", "source_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[LeadKind] = mapped_column(String(16))
    source: Mapped[LeadSource] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    vehicle: Mapped[dict[str, Any]] = mapped_column(JSON)
    raw_input_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Added by the source adapters (issue 3).
    email_key: Mapped[str | None] = mapped_column(String(254), index=True)
    email_is_relay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    phone_raw: Mapped[str | None] = mapped_column(String(60))
    consents: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A marketplace's relay address (issue 13): answers go there; never an identity key.
    relay_email: Mapped[str | None] = mapped_column(String(254))


class RawInput(Base):
    """Exactly what a source sent, kept for audit and re-parsing; purged after the retention
    period (``received_at``). Personal data: ``body``."""

    __tablename__ = "raw_input"
    __table_args__ = (Index("ix_raw_input_sha256", "sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))  # api, email, imap, facebook
    content_type: Mapped[str] = mapped_column(String(120))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    outcome: Mapped[RawOutcome] = mapped_column(String(16))
    lead_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(String(120))


class RawInputPurge(Base):
    """Evidence of each retention run over raw inputs: when, the cutoff, how many (no data)."""

    __tablename__ = "raw_input_purge"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    cutoff: Mapped[datetime] = mapped_column(UtcDateTime())
    purged: Mapped[int] = mapped_column(Integer)


class QuarantinedInput(Base):
    """An input no parser could turn into a lead: its reason, until a retry resolves it."""

    __tablename__ = "quarantined_input"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    raw_input_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(120))
    detail: Mapped[str | None] = mapped_column(String(500))  # field names and types, no values
    status: Mapped[QuarantineStatus] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    lead_id: Mapped[str | None] = mapped_column(String(36))
    facebook_fetch_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class IgnoredInput(Base):
    """An input that is known not to be a lead (alert, newsletter, bounce…), with the reason."""

    __tablename__ = "ignored_input"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    raw_input_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FacebookFetch(Base):
    """A Lead Ads notification whose lead must be fetched from the Graph API (retried with
    backoff by the worker until done or quarantined)."""

    __tablename__ = "facebook_fetch"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    leadgen_id: Mapped[str] = mapped_column(String(64), unique=True)
    page_id: Mapped[str | None] = mapped_column(String(64))
    form_id: Mapped[str | None] = mapped_column(String(64))
    ad_id: Mapped[str | None] = mapped_column(String(64))
    raw_input_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[FetchStatus] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))
    lead_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InboundMessage(Base):
    """A message matched to a lead's conversation instead of becoming a lead: the prospect's
    reply (e-mail or SMS) or a bounce of one of qualify's e-mails. ``id`` is the ``message_id``
    of its event, stable across redeliveries: one row, one event. Ids and flags only (the bytes
    stay in ``raw_input``, 30 days); keyed by ``lead_id`` for erasure and export."""

    __tablename__ = "inbound_message"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[InboundKind] = mapped_column(String(8))
    channel: Mapped[MessageChannel] = mapped_column(String(8))
    lead_id: Mapped[str] = mapped_column(String(36), index=True)
    raw_input_id: Mapped[str | None] = mapped_column(String(36))
    # qualify's message id this answers (reply) or that bounced (bounce), when known
    answers: Mapped[str | None] = mapped_column(String(100))
    stop_request: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboundSms(Base):
    """An SMS qualify sent to a lead (``lead.message-sent.v1``) with the keyed hash of the lead's
    number (``privacy_hmac_key``, never the number): an inbound SMS answers the most recent SMS
    sent to its sender's number."""

    __tablename__ = "outbound_sms"
    __table_args__ = (Index("ix_outbound_sms_phone_hash_sent_at", "phone_hash", "sent_at"),)

    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(36), index=True)
    phone_hash: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())


metadata = Base.metadata
