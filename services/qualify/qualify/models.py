"""Qualify's tables: the operators' queue (one row per lead, with its claim), contact attempts and
qualifications, plus the shared infrastructure tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    and_,
    true,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from qualify.leads.state import LeadStatus
from qualify.messages.state import (
    BlockReason,
    MessageStatus,
    TemplateKind,
)
from qualify.settings import DirectIntent
from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime
from shared.events.payloads import (
    AttemptOutcome,
    BounceKind,
    ContactChannel,
    DisqualificationReason,
    LeadKind,
    LeadSource,
    MessageChannel,
    MessageKind,
    ReopenReason,
    RoutingPath,
    SalesChannel,
)

# Routing rules apply to a source, or to a site (recognised by the lead's ad reference).
RuleScope = Literal["source", "site"]

# Queue ranks: a call-back whose time came is served before every ordinary lead.
CALLBACK_RANK = 0
ORDINARY_RANK = 1


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class QueuedLead(Base):
    """A lead waiting for (or handled by) a digital operator. Personal data: contact, message.

    ``is_open`` is true while the lead waits for a decision (status waiting or contacting); the
    queue reads the index (is_open, queue_rank, due_at, lead_id), skipping leads whose
    ``available_at`` is still ahead (a call-back, the wait before a retry). ``due_at`` is when the
    next contact is due (``leads/schedule.py`` moves it). A claim is the triple claimed_by /
    claimed_at / claim_expires_at; an expired claim is no claim (the lead is back in the queue).
    """

    __tablename__ = "queued_lead"
    __table_args__ = (
        Index("ix_queued_lead_queue_rank", "is_open", "queue_rank", "due_at", "lead_id"),
        Index(
            "ix_queued_lead_queue_rank_source",
            "is_open",
            "source",
            "queue_rank",
            "due_at",
            "lead_id",
        ),
        Index("ix_queued_lead_handled", "handled_by", "closed_at"),
        Index("ix_queued_lead_claimed_by", "claimed_by"),
        Index("ix_queued_lead_phone", "phone"),
        Index("ix_queued_lead_callback_by", "callback_by", "callback_at"),
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
    # What the messages to the prospect need (templates, a marketplace's relay address).
    first_name: Mapped[str | None] = mapped_column(String(100))
    vehicle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    relay_email: Mapped[str | None] = mapped_column(String(254))
    # Replies of the prospect no operator has marked read (conversation).
    unread_replies: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
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
    # The contact schedule: not in the queue before available_at (NULL: now); rank 0 first.
    available_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    queue_rank: Mapped[int] = mapped_column(
        SmallInteger, default=ORDINARY_RANK, server_default=str(ORDINARY_RANK)
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The call-back the prospect asked for (personal data: the note), owned by callback_by.
    callback_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    callback_timezone: Mapped[str | None] = mapped_column(String(40))
    callback_by: Mapped[str | None] = mapped_column(String(36))
    callback_set_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    callback_note: Mapped[str | None] = mapped_column(Text)
    routing_path: Mapped[RoutingPath] = mapped_column(
        String(16), default="qualify", server_default="qualify"
    )
    reopened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reopened_by: Mapped[str | None] = mapped_column(String(36))
    reopen_reason: Mapped[ReopenReason | None] = mapped_column(String(32))

    @hybrid_method
    def is_overdue(self, now: datetime) -> bool:
        """THE computation of "overdue" (queue items, the lead, figures, the queue's filter):
        an open lead whose next contact was due before ``now``."""
        return self.is_open and self.due_at < now

    @is_overdue.expression
    @classmethod
    def _is_overdue_sql(cls, now: datetime) -> ColumnElement[bool]:
        return and_(cls.is_open == true(), cls.due_at < now)


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


class RoutingRule(Base):
    """Where leads of a source, or of a site, go at receipt: the operators' queue (``qualify``)
    or dispatch at once (``direct``). A site rule recognises its leads by the prefixes of their
    ad references (qualify learns no site at receipt otherwise). No personal data."""

    __tablename__ = "routing_rule"

    scope: Mapped[RuleScope] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[RoutingPath] = mapped_column(String(16))
    channel: Mapped[SalesChannel | None] = mapped_column(String(16))
    intent: Mapped[DirectIntent | None] = mapped_column(String(16))
    ad_ref_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(36))


class ConfigVersion(Base):
    """One row: how many times the routing rules or the message templates changed. Triggers on
    both tables bump it in the writer's own statement (migration ``config_version``), whoever
    writes; the worker caches both and reads this in the statement that inserts a new lead
    (``qualify.config_cache``). No personal data."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)


class SuppressedContact(Base):
    """A contact on crm's do-not-contact list: the keyed hash only, never the phone or e-mail."""

    __tablename__ = "suppressed_contact"

    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    suppressed_at: Mapped[datetime] = mapped_column(UtcDateTime())


# -- messages to and from the prospect (qualify/messages, qualify/templates) -----------------


class MessageTemplate(Base):
    """An admin's override of a built-in template, for every lead, a site, a source or both.
    ``scope`` is the unique key of (site, source): NULLs are distinct in unique indexes."""

    __tablename__ = "message_template"
    __table_args__ = (UniqueConstraint("kind", "channel", "scope"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[TemplateKind] = mapped_column(String(32))
    channel: Mapped[MessageChannel] = mapped_column(String(8))
    site: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[LeadSource | None] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(36))


class OutgoingMessage(Base):
    """A message to the prospect, written in the transaction that decided it (an outbox of
    messages) and sent by the worker's sender. Personal data: address, subject, bodies.

    ``dedupe_key`` makes an automatic message unique per lead, kind and channel. A send is a
    claim (``claim_token``, ``lease_expires_at``) committed before any network call;
    ``handed_over_at`` is committed just before the irreversible step (SMTP DATA, the provider's
    POST): an expired claim without it is safe to retry, one with it is never blindly resent
    (docs/messaging.md).
    """

    __tablename__ = "outgoing_message"
    __table_args__ = (
        Index("ix_outgoing_message_due", "status", "next_attempt_at"),
        Index("ix_outgoing_message_lead", "lead_id", "created_at"),
        Index("ix_outgoing_message_provider_id", "provider_message_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("queued_lead.lead_id", ondelete="CASCADE"))
    dedupe_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    kind: Mapped[MessageKind] = mapped_column(String(32))
    channel: Mapped[MessageChannel] = mapped_column(String(8))
    status: Mapped[MessageStatus] = mapped_column(String(16))
    operator_id: Mapped[str | None] = mapped_column(String(36))
    attempt_id: Mapped[str | None] = mapped_column(String(36))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    handed_over_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    waiting_reason: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(String(300))
    bounce: Mapped[BounceKind | None] = mapped_column(String(8))
    bounce_status: Mapped[str | None] = mapped_column(String(16))
    bounced_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    receipt_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class IncomingMessage(Base):
    """A reply of the prospect (``lead.message-received.v1``). Personal data: sender, bodies."""

    __tablename__ = "incoming_message"
    __table_args__ = (
        UniqueConstraint("channel", "source_message_id"),
        Index("ix_incoming_message_lead", "lead_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("queued_lead.lead_id", ondelete="CASCADE"))
    channel: Mapped[MessageChannel] = mapped_column(String(8))
    source_message_id: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    in_reply_to: Mapped[str | None] = mapped_column(String(36))
    message_id_header: Mapped[str | None] = mapped_column(String(998))
    stop_request: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    read_by: Mapped[str | None] = mapped_column(String(36))


class BlockedContact(Base):
    """A phone or address qualify must not write to on one channel: the person said STOP or
    unsubscribed, or the address bounced hard. The keyed hash only (it survives erasure, as the
    do-not-contact list does: it is what keeps the opt-out honoured)."""

    __tablename__ = "blocked_contact"

    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[MessageChannel] = mapped_column(String(8), primary_key=True)
    reason: Mapped[BlockReason] = mapped_column(String(16))
    blocked_at: Mapped[datetime] = mapped_column(UtcDateTime())


metadata = Base.metadata
