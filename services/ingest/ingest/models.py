"""Ingest's tables: canonical leads, plus the shared infrastructure tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import add_infra_tables, make_metadata
from shared.db.types import UtcDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)


class Lead(Base):
    """A canonical lead. Personal data: contact fields and message (erasure and retention)."""

    __tablename__ = "lead"
    __table_args__ = (UniqueConstraint("source", "source_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
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


metadata = Base.metadata
