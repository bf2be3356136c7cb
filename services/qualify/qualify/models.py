"""Qualify's tables: the operators' queue, plus the shared infrastructure tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class QueuedLead(Base):
    """A lead waiting for (or handled by) a digital operator. Personal data: contact, message."""

    __tablename__ = "queued_lead"
    __table_args__ = (Index("ix_queued_lead_status_received", "status", "received_at", "lead_id"),)

    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    full_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    ad_ref: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime())


metadata = Base.metadata
