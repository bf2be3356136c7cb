"""Queueing webhook messages to sellers' tools (in the caller's transaction), the endpoint's
state (disable on 410 or after repeated failures, with a manager alert and an event; re-enable),
and managers' replays."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.repository import DirectoryRepository
from dispatch.models import ManagerAlert, Seller, WebhookDelivery
from dispatch.problems import EndpointDisabled, UnknownDelivery, UnknownSeller
from dispatch.webhooks.handoff import Job, WebhookHandoff
from dispatch.webhooks.repository import WebhookRepository
from shared.db.session import wake_after_commit
from shared.events.payloads import SellerWebhookDisabledV1
from shared.outbox import Outbox
from shared.tracing import current_traceparent

# Webhook event types (Standard Webhooks: dot-separated, [a-zA-Z0-9_]).
OFFERED = "assignment.offered"
ASSIGNED = "assignment.assigned"  # a manager gave the seller the lead directly
WITHDRAWN = "assignment.withdrawn"
FOLLOWUP_DUE = "followup.due"
ESCALATED = "lead.escalated"
LEAD_UPDATED = "lead.updated"  # GDPR Art. 16: the prospect's corrected contact
LEAD_ERASED = "lead.erased"  # GDPR: the seller's tool must delete the lead


def render_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    """The exact bytes that are signed and sent (never re-serialised afterwards)."""
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def can_receive(seller: Seller) -> bool:
    """The seller's tool has an endpoint and a secret, and it is not disabled."""
    return bool(seller.webhook_url and seller.webhook_secret and not seller.webhook_disabled_at)


@dataclass(frozen=True)
class QueuedWebhook:
    """A message to write (``row``: every column of ``webhook_delivery``) and, when it is
    claimed at birth, the job handed to the worker's sender once it is committed."""

    row: dict[str, Any]
    job: Job | None
    lease_until: datetime | None

    @property
    def id(self) -> str:
        return str(self.row["id"])


async def queue_webhook(
    session: AsyncSession,
    seller: Seller,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    lead_id: str | None,
    handoff: WebhookHandoff | None = None,
) -> str:
    """Stage one message for the seller's tool (one prebuilt INSERT, no ORM object); returns
    its id (``webhook_message``, then ``message_written``)."""
    message = webhook_message(seller, event_type, data, now=now, lead_id=lead_id, handoff=handoff)
    await WebhookRepository(session).insert_delivery(message.row)
    message_written(session, message, handoff)
    return message.id


def webhook_message(
    seller: Seller,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    lead_id: str | None,
    handoff: WebhookHandoff | None = None,
) -> QueuedWebhook:
    """One message for the seller's tool, to write. Without a usable endpoint (none, or
    disabled) it is kept as ``held``: never sent, but in the seller's feed, and ``recover``
    sends it once the endpoint is enabled.

    With ``handoff`` (the worker's own sender) a sendable message is claimed at birth: written
    leased to that sender and handed to it once committed (``dispatch.webhooks.handoff``)."""
    sendable = can_receive(seller)
    delivery_id = f"msg_{uuid.uuid4().hex}"
    body = render_body(event_type, data, now)
    traceparent = current_traceparent.get()
    lease_until = handoff.lease_until(now) if handoff is not None and sendable else None
    row = {
        "id": delivery_id,
        "seller_id": seller.id,
        "lead_id": lead_id,
        "event_type": event_type,
        "body": body,
        "status": "pending" if sendable else "held",
        "attempts": 0,
        "next_attempt_at": (lease_until or now) if sendable else None,
        "last_status_code": None,
        "last_outcome": None if sendable else _held_outcome(seller),
        "created_at": now,
        "delivered_at": None,
        "traceparent": traceparent,
    }
    job = None
    if lease_until is not None:
        job = Job(
            delivery_id=delivery_id,
            seller_id=seller.id,
            event_type=event_type,
            body=body,
            url=seller.webhook_url,
            secret=seller.webhook_secret,
            traceparent=traceparent,
        )
    return QueuedWebhook(row, job, lease_until)


def message_written(
    session: AsyncSession, message: QueuedWebhook, handoff: WebhookHandoff | None
) -> None:
    """After its row is written in ``session``: the message goes to the worker's sender once
    committed (claimed at birth), else the sender is woken once committed."""
    if handoff is not None and message.job is not None and message.lease_until is not None:
        handoff.hand_over(session, message.job, message.lease_until)
    else:
        wake_after_commit(session, WebhookDelivery.__tablename__)


def _held_outcome(seller: Seller) -> str:
    return "endpoint_disabled" if seller.webhook_disabled_at is not None else "no_endpoint"


async def disable_endpoint(
    session: AsyncSession, seller: Seller, *, reason: str, now: datetime, outbox: Outbox
) -> None:
    """Stop delivering to the seller's tool; managers see an alert and an event is published."""
    if seller.webhook_disabled_at is not None:
        return
    seller.webhook_disabled_at = now
    seller.webhook_disabled_reason = reason
    WebhookRepository(session).add(
        ManagerAlert(
            kind=f"webhook_disabled_{reason}",
            seller_id=seller.id,
            site_id=seller.site_id,
            lead_id=None,
            created_at=now,
            acknowledged_at=None,
        )
    )
    await outbox.stage(
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


async def enable_endpoint(session: AsyncSession, seller_id: str) -> Seller:
    """Re-enable a disabled endpoint (failures reset; failed messages stay failed)."""
    seller = await DirectoryRepository(session).seller(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    seller.webhook_disabled_at = None
    seller.webhook_disabled_reason = None
    seller.webhook_failures = 0
    return seller


async def replay(session: AsyncSession, delivery_id: str, *, now: datetime) -> WebhookDelivery:
    """Send the same message again (same ``webhook-id``, new timestamp and signature)."""
    delivery = await WebhookRepository(session).delivery(delivery_id)
    if delivery is None:
        raise UnknownDelivery("No delivery has this id.")
    seller = await DirectoryRepository(session).seller(delivery.seller_id)
    if seller is None or seller.webhook_disabled_at is not None or not seller.webhook_url:
        raise EndpointDisabled("The seller's endpoint is disabled; enable it first.")
    _reset(delivery, now)
    wake_after_commit(session, WebhookDelivery.__tablename__)
    return delivery


async def recover(
    session: AsyncSession,
    seller_id: str,
    *,
    since: datetime,
    until: datetime | None,
    now: datetime,
) -> int:
    """Send again every failed or held message of the seller created since ``since`` (until
    ``until``)."""
    seller = await DirectoryRepository(session).seller(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    if seller.webhook_disabled_at is not None or not seller.webhook_url:
        raise EndpointDisabled("The seller's endpoint is disabled; enable it first.")
    failed = await WebhookRepository(session).undelivered_between(
        seller_id, since=since, until=until
    )
    for delivery in failed:
        _reset(delivery, now)
    if failed:
        wake_after_commit(session, WebhookDelivery.__tablename__)
    return len(failed)


def _reset(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.last_outcome = "replayed"
