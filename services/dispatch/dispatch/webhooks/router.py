"""Delivery log, manual replay (one delivery, or a seller's failures since a time) and
re-enabling an endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from dispatch.clock import NowDep
from dispatch.models import Seller, WebhookAttempt, WebhookDelivery
from dispatch.webhooks.schemas import AttemptOut, DeliveryOut, RecoverIn, RecoverOut
from shared.api import SessionDep, require_roles
from shared.auth import Principal
from shared.errors import Conflict, NotFound

router = APIRouter(prefix="/v1", tags=["webhooks"])

Manager = Annotated[Principal, Depends(require_roles("manager"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]

PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    404: {"description": "Unknown delivery or seller (problem+json)"},
    409: {"description": "The endpoint is disabled (problem+json)"},
    422: {"description": "Invalid parameter (problem+json)"},
}


@router.get("/webhook-deliveries", response_model=list[DeliveryOut], responses=PROBLEMS)
async def list_deliveries(
    session: SessionDep,
    _: Manager,
    seller_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(limit)
    if seller_id is not None:
        query = query.where(WebhookDelivery.seller_id == seller_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return [DeliveryOut.model_validate(row) for row in (await session.scalars(query)).all()]


@router.get(
    "/webhook-deliveries/{delivery_id}/attempts",
    response_model=list[AttemptOut],
    responses=PROBLEMS,
)
async def list_attempts(delivery_id: str, session: SessionDep, _: Manager) -> list[AttemptOut]:
    if await session.get(WebhookDelivery, delivery_id) is None:
        raise NotFound("No delivery has this id.")
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.attempt)
    )
    return [AttemptOut.model_validate(row) for row in rows.all()]


@router.post(
    "/webhook-deliveries/{delivery_id}/replay", response_model=DeliveryOut, responses=PROBLEMS
)
async def replay(delivery_id: str, session: SessionDep, _: Manager, now: NowDep) -> DeliveryOut:
    """Send the same message again (same ``webhook-id``, new timestamp and signature)."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("No delivery has this id.")
    seller = await session.get(Seller, delivery.seller_id)
    if seller is None or seller.webhook_disabled_at is not None or not seller.webhook_url:
        raise Conflict("The seller's endpoint is disabled; enable it first.")
    _reset(delivery, now)
    return DeliveryOut.model_validate(delivery)


@router.post("/sellers/{seller_id}/webhook/recover", response_model=RecoverOut, responses=PROBLEMS)
async def recover(
    seller_id: str, body: RecoverIn, session: SessionDep, _: Manager, now: NowDep
) -> RecoverOut:
    """Replay every failed delivery of the seller created since ``since`` (until ``until``)."""
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise NotFound("No seller has this id.")
    if seller.webhook_disabled_at is not None or not seller.webhook_url:
        raise Conflict("The seller's endpoint is disabled; enable it first.")
    query = select(WebhookDelivery).where(
        WebhookDelivery.seller_id == seller_id,
        WebhookDelivery.status == "failed",
        WebhookDelivery.created_at >= body.since,
    )
    if body.until is not None:
        query = query.where(WebhookDelivery.created_at < body.until)
    rows = (await session.scalars(query)).all()
    for delivery in rows:
        _reset(delivery, now)
    return RecoverOut(seller_id=seller_id, replayed=len(rows))


@router.post("/sellers/{seller_id}/webhook/enable", response_model=RecoverOut, responses=PROBLEMS)
async def enable(seller_id: str, session: SessionDep, _: Admin) -> RecoverOut:
    """Re-enable a disabled endpoint (failures reset; replay failures with ``recover``)."""
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise NotFound("No seller has this id.")
    seller.webhook_disabled_at = None
    seller.webhook_disabled_reason = None
    seller.webhook_failures = 0
    return RecoverOut(seller_id=seller_id, replayed=0)


def _reset(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.last_outcome = "replayed"
