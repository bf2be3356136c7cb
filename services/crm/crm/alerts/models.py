"""Disabled sellers' webhooks, from ``seller.webhook-disabled.v1`` (ids and reasons only). The
leads at risk are not stored here: they are read from the SLA facts at the time of the request."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.models import Base
from shared.db.types import UtcDateTime

DisabledReason = Literal["gone", "too_many_failures"]


class WebhookDisabledAlert(Base):
    """One disabling of a seller's webhook endpoint (the event's id: a re-delivery is one row)."""

    __tablename__ = "webhook_disabled_alert"
    __table_args__ = (Index("ix_webhook_disabled_alert_disabled_at", "disabled_at", "event_id"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[DisabledReason] = mapped_column(String(32))
    consecutive_failures: Mapped[int]
    disabled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
