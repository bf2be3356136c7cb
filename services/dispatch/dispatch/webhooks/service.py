"""Queueing webhook messages to sellers' tools (in the caller's transaction) and the endpoint's
state (disable on 410 or after repeated failures, with a manager alert and an event)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.events import publish
from dispatch.models import ManagerAlert, Seller, WebhookDelivery
from shared.events.payloads import SellerWebhookDisabledV1
from shared.tracing import current_traceparent

# Webhook event types (Standard Webhooks: dot-separated, [a-zA-Z0-9_]).
OFFERED = "assignment.offered"
WITHDRAWN = "assignment.withdrawn"
FOLLOWUP_DUE = "followup.due"
ESCALATED = "lead.escalated"
LEAD_ERASED = "lead.erased"  # GDPR: the seller's tool must delete the lead


def render_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """The exact bytes that are signed and sent (never re-serialised afterwards)."""
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


async def queue_webhook(
    session: AsyncSession,
    seller: Seller,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    lead_id: str | None,
) -> WebhookDelivery | None:
    """Stage one message for the seller's tool; None when the seller has no usable endpoint."""
    if not seller.webhook_url or not seller.webhook_secret or seller.webhook_disabled_at:
        return None
    delivery = WebhookDelivery(
        id=f"msg_{uuid.uuid4().hex}",
        seller_id=seller.id,
        lead_id=lead_id,
        event_type=event_type,
        body=render_body(event_type, data, now),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        last_status_code=None,
        last_outcome=None,
        created_at=now,
        delivered_at=None,
        traceparent=current_traceparent.get(),
    )
    session.add(delivery)
    return delivery


async def disable_endpoint(
    session: AsyncSession, seller: Seller, *, reason: str, now: datetime
) -> None:
    """Stop delivering to the seller's tool; managers see an alert and an event is published."""
    if seller.webhook_disabled_at is not None:
        return
    seller.webhook_disabled_at = now
    seller.webhook_disabled_reason = reason
    session.add(
        ManagerAlert(
            kind=f"webhook_disabled_{reason}",
            seller_id=seller.id,
            site_id=seller.site_id,
            lead_id=None,
            created_at=now,
            acknowledged_at=None,
        )
    )
    await publish(
        session,
        "seller.webhook-disabled.v1",
        seller.id,
        SellerWebhookDisabledV1(
            seller_id=seller.id,
            reason="gone" if reason == "gone" else "too_many_failures",
            consecutive_failures=seller.webhook_failures,
            disabled_at=now,
        ),
    )
