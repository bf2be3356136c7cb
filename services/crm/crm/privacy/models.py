"""GDPR tables of crm. The audit trail (erasure requests, each service's answer, retention runs,
the do-not-contact list) holds ids, keyed hashes, counts and times only; export parts hold personal
data and are erased with the client, and purged after ``EXPORT_KEPT``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm.models import Base
from crm.privacy.schemas import ContactKind, ErasureReason, ObjectionReason, RetentionTrigger
from shared.db.types import UtcDateTime


class ErasureRequest(Base):
    """An erasure (Art. 17) of one client, tracked until every service answered."""

    __tablename__ = "erasure_request"
    __table_args__ = (Index("ix_erasure_request_open_asked", "completed_at", "asked_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One request per client: asking again answers the same request (idempotent).
    client_id: Mapped[str] = mapped_column(String(36), unique=True)
    reason: Mapped[ErasureReason] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(36))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lead_ids: Mapped[list[str]] = mapped_column(JSON)
    contact_hashes: Mapped[list[str]] = mapped_column(JSON)
    # When the services were last asked (the request, then each re-ask of the services that had
    # not answered: crm/privacy/reask.py), and how many times.
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    asks: Mapped[int] = mapped_column(server_default=text("1"))


class ErasureProgress(Base):
    """One service's answer to an erasure request: what it erased, table by table."""

    __tablename__ = "erasure_progress"

    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("erasure_request.id", ondelete="CASCADE"), primary_key=True
    )
    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    erased: Mapped[dict[str, int]] = mapped_column(JSON)
    rows_total: Mapped[int]


class RetentionRun(Base):
    """Evidence of one retention run (CNIL: prospects' data 3 years after their last contact)."""

    __tablename__ = "retention_run"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    dry_run: Mapped[bool]
    trigger: Mapped[RetentionTrigger] = mapped_column(String(16))
    cutoff: Mapped[datetime] = mapped_column(UtcDateTime())
    clients_matched: Mapped[int]
    erasures_requested: Mapped[int]


class ContactObjection(Base):
    """The do-not-contact list (Art. 21): keyed hashes only, never the phone or e-mail itself."""

    __tablename__ = "contact_objection"

    contact_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[ContactKind] = mapped_column(String(8))
    reason: Mapped[ObjectionReason] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recorded_by: Mapped[str | None] = mapped_column(String(36))


class ExportRequest(Base):
    """An access/portability export (Art. 15/20) of one client, gathered from every service."""

    __tablename__ = "export_request"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    requested_by: Mapped[str | None] = mapped_column(String(36))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lead_ids: Mapped[list[str]] = mapped_column(JSON)


class ExportPart(Base):
    """One service's share of an export: personal data."""

    __tablename__ = "export_part"

    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("export_request.id", ondelete="CASCADE"), primary_key=True
    )
    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[dict[str, list[dict[str, Any]]]] = mapped_column(JSON)
