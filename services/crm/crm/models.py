"""CRM's tables: clients resolved across sources and their timeline, plus infrastructure. The
modules' own tables (``crm/{privacy,sla,alerts}/models.py``) subclass ``Base`` and join its
metadata (one Alembic history): they are imported at the end of this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class Client(Base):
    """One person across sources. Personal data: names, phone, e-mail."""

    __tablename__ = "client"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    full_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_contact_at: Mapped[datetime] = mapped_column(UtcDateTime())

    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="client", lazy="raise", order_by="TimelineEntry.occurred_at"
    )


class TimelineEntry(Base):
    """One step of a client's history, from an event (id kept for idempotency and audit)."""

    __tablename__ = "timeline_entry"
    __table_args__ = (Index("ix_timeline_entry_client_occurred", "client_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the event id
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    lead_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    client: Mapped[Client] = relationship(back_populates="timeline", lazy="raise")


metadata = Base.metadata

# Last: these modules import Base from here.
import crm.alerts.models  # noqa: E402
import crm.privacy.models  # noqa: E402
import crm.sla.models  # noqa: E402, F401
