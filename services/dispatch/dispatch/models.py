"""Dispatch's tables: the directory (sites, sellers, contact schedules, vehicle stock, people),
leads to
route and their assignments, durable timers, webhook deliveries and manager alerts, plus the shared
infrastructure tables.

Personal data lives only in ``dispatch_lead.qualification`` (the qualification as received, sent
to the seller's tool) and in ``webhook_delivery.body`` (the signed payload, kept for retries and
replay). Every other table holds ids, states, times and counts; ``person`` holds staff names
and single sign-on identities (staff data, not prospects': erasure requests do not reach it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dispatch.assignments.state import AppointmentStatus, AssignmentStatus, LeadStatus
from dispatch.directory.schemas import SellerMode
from dispatch.timers.kinds import TimerKind, TimerOutcome
from dispatch.webhooks.schemas import DeliveryStatus
from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime
from shared.events.access import PersonKind


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)

_BIGINT_ID = BigInteger().with_variant(Integer(), "sqlite")


class Site(Base):
    """A store: opening hours (weekly spec with breaks), closures, holidays, time zone."""

    __tablename__ = "site"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    postcode: Mapped[str] = mapped_column(String(10))
    timezone: Mapped[str] = mapped_column(String(64))
    opening_hours: Mapped[str] = mapped_column(String(400))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(8))
    closures: Mapped[list[str]] = mapped_column(JSON)
    full_web_fallback: Mapped[bool] = mapped_column(Boolean)
    fallback_after_minutes: Mapped[int] = mapped_column(Integer)
    manager_seller_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Seller(Base):
    """A seller: in_store (attached to a site) or full_web, with capacity, shifts, absences and
    the webhook endpoint of their tool. ``open_count`` counts offers and open assignments (kept
    up to date by the assignment service) so routing never counts assignments."""

    __tablename__ = "seller"
    __table_args__ = (
        # The pool's order (least loaded, then least recently offered) is read off the index.
        Index("ix_seller_pool", "mode", "active", "open_count", "last_offered_at", "id"),
        Index("ix_seller_site", "site_id", "active"),
        Index("ix_seller_token", "token_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[SellerMode] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("site.id"))
    skills: Mapped[list[str]] = mapped_column(JSON)
    capacity: Mapped[int] = mapped_column(Integer)
    shifts: Mapped[str] = mapped_column(String(400))
    absences: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    open_count: Mapped[int] = mapped_column(Integer)
    last_offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    token_id: Mapped[str | None] = mapped_column(String(36))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    webhook_disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    webhook_disabled_reason: Mapped[str | None] = mapped_column(String(32))
    webhook_failures: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ContactSchedule(Base):
    """Deadlines per source and/or site (None = any); the most specific one applies."""

    __tablename__ = "contact_schedule"
    __table_args__ = (Index("ix_contact_schedule_scope", "source", "site_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(32))
    site_id: Mapped[str | None] = mapped_column(String(64))
    accept_within_minutes: Mapped[int] = mapped_column(Integer)
    first_contact_within_minutes: Mapped[int] = mapped_column(Integer)
    followup_days: Mapped[list[int]] = mapped_column(JSON)
    escalation_seller_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class VehicleStock(Base):
    """Which site holds a vehicle (ad reference), and whether it is sold."""

    __tablename__ = "vehicle_stock"

    ad_ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"))
    make: Mapped[str | None] = mapped_column(String(60))  # matched against `brand:` skills
    sold_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Person(Base):
    """Someone (or a machine: a source, a seller's tool) who may call the services: roles,
    sites, an optional single sign-on identity, an optional seller of the directory. The master
    of ``access_person`` in every service (``people/``); its tokens are the rows of ``api_token``
    with its ``person_id``. ``version`` grows with every change (the events carry it)."""

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("sso_issuer", "sso_subject", name="uq_person_sso"),
        Index("ix_person_seller", "seller_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[PersonKind] = mapped_column(String(16))
    roles: Mapped[list[str]] = mapped_column(JSON)
    sites: Mapped[list[str] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    sso_issuer: Mapped[str | None] = mapped_column(String(255))
    sso_subject: Mapped[str | None] = mapped_column(String(255))
    seller_id: Mapped[str | None] = mapped_column(ForeignKey("seller.id"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DispatchLead(Base):
    """A qualified lead to route. ``status``: see ``assignments/state.py``. ``qualification`` is
    the received payload (personal data, erased with the lead)."""

    __tablename__ = "dispatch_lead"
    __table_args__ = (
        Index("ix_dispatch_lead_status", "status", "site_id", "qualified_at"),
        Index("ix_dispatch_lead_vehicle", "vehicle_ad_ref"),
    )

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(String(64))
    vehicle_ad_ref: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8))
    financing_wanted: Mapped[bool] = mapped_column(Boolean)
    do_not_contact: Mapped[bool] = mapped_column(Boolean)
    followups_blocked: Mapped[bool] = mapped_column(Boolean)
    qualification: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[LeadStatus] = mapped_column(String(16))
    seller_id: Mapped[str | None] = mapped_column(String(36))
    routed_to: Mapped[SellerMode | None] = mapped_column(String(16))
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    escalation_reason: Mapped[str | None] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    qualified_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LeadContactKey(Base):
    """Keyed hashes (``shared.privacy.contact_hash``) of a lead's phone and e-mail, to apply
    ``privacy.contact-suppressed.v1`` objections without storing the keys twice."""

    __tablename__ = "lead_contact_key"
    __table_args__ = (Index("ix_lead_contact_key_hash", "contact_hash"),)

    lead_id: Mapped[str] = mapped_column(
        ForeignKey("dispatch_lead.lead_id", ondelete="CASCADE"), primary_key=True
    )
    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)


class SuppressedContact(Base):
    """An objection (Art. 21) received from crm: no follow-ups for this keyed hash."""

    __tablename__ = "suppressed_contact"

    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    suppressed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Assignment(Base):
    """One offer of a lead to a seller and, once accepted, the seller's work on it.

    ``status``: offered → accepted → contacted → appointment → sold | lost | handed_back; or
    offered → declined | expired; or withdrawn (``assignments/state.py``). ``is_open`` is true
    while it counts in the seller's load. An assignment that takes over from another (a
    manager's reassignment, a hand-back) names it in ``previous_assignment_id`` and carries its
    progress (first contact, follow-ups sent, appointment).
    """

    __tablename__ = "assignment"
    __table_args__ = (
        Index("ix_assignment_lead", "lead_id", "offered_at"),
        Index("ix_assignment_seller", "seller_id", "is_open"),
        Index("ix_assignment_open", "is_open", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("dispatch_lead.lead_id", ondelete="CASCADE"))
    seller_id: Mapped[str] = mapped_column(ForeignKey("seller.id"))
    site_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[AssignmentStatus] = mapped_column(String(16))
    is_open: Mapped[bool] = mapped_column(Boolean)
    strategy: Mapped[str] = mapped_column(String(32))
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accept_due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_contact_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    contacted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    contact_channel: Mapped[str | None] = mapped_column(String(8))
    appointment_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    followups_sent: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # J+n follow-ups count from here: the first contact, or the last no-show.
    followups_from_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    previous_assignment_id: Mapped[str | None] = mapped_column(String(36))
    # Id of the manager's token when a manager made this assignment by hand (never a name).
    assigned_by: Mapped[str | None] = mapped_column(String(64))
    sale_price_eur: Mapped[int | None] = mapped_column(Integer)


class Appointment(Base):
    """One appointment with the prospect, kept when it is moved or missed (the history).
    ``status``: scheduled (the current one), rescheduled (replaced by a later one), missed
    (no-show). Ids and times only."""

    __tablename__ = "appointment"
    __table_args__ = (Index("ix_appointment_lead", "lead_id", "set_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("dispatch_lead.lead_id", ondelete="CASCADE"))
    assignment_id: Mapped[str] = mapped_column(String(36))
    seller_id: Mapped[str] = mapped_column(String(36))
    site_id: Mapped[str | None] = mapped_column(String(64))
    appointment_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[AppointmentStatus] = mapped_column(String(16))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Timer(Base):
    """A durable timer: fired once by whichever worker claims it (SKIP LOCKED on PostgreSQL)."""

    __tablename__ = "timer"
    __table_args__ = (
        Index("ix_timer_due", "fired_at", "due_at"),
        Index("ix_timer_assignment", "assignment_id"),
        Index("ix_timer_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    kind: Mapped[TimerKind] = mapped_column(String(32))
    lead_id: Mapped[str] = mapped_column(String(36))
    assignment_id: Mapped[str | None] = mapped_column(String(36))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    fired_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[TimerOutcome | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One message to one seller's tool. ``id`` is the ``webhook-id`` (same on every retry).
    ``status``: pending, delivered, failed (attempts exhausted or endpoint disabled)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_seller", "seller_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("seller.id"))
    lead_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # W3C trace context of the event that caused the message, sent as the `traceparent` header.
    traceparent: Mapped[str | None] = mapped_column(String(55))


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt (status, latency; never the body)."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_delivery.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    latency_ms: Mapped[int] = mapped_column(Integer)


class ManagerAlert(Base):
    """Something a manager must see (endpoint disabled, …): ids and kinds only."""

    __tablename__ = "manager_alert"
    __table_args__ = (Index("ix_manager_alert_created", "created_at"),)

    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    seller_id: Mapped[str | None] = mapped_column(String(36))
    site_id: Mapped[str | None] = mapped_column(String(64))
    lead_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


metadata = Base.metadata
