"""Delivery log, manual replay (one delivery, or a seller's failures since a time) and
re-enabling an endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dispatch.deps import Admin, Manager, NowDep
from dispatch.problems import EndpointDisabled, UnknownDelivery, UnknownSeller
from dispatch.webhooks import service
from dispatch.webhooks.repository import WebhookRepository
from dispatch.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryStatus,
    RecoverIn,
    RecoverOut,
)
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=AUTH_PROBLEMS)


@router.get(
    "/webhook-deliveries",
    response_model=list[DeliveryOut],
    responses=problem_responses(InvalidRequest),
)
async def list_deliveries(
    session: SessionDep,
    _: Manager,
    seller_id: Annotated[str | None, Query(max_length=36)] = None,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    rows = await WebhookRepository(session).deliveries(
        seller_id=seller_id, status=status, limit=limit
    )
    return [DeliveryOut.model_validate(row) for row in rows]


@router.get(
    "/webhook-deliveries/{delivery_id}/attempts",
    response_model=list[AttemptOut],
    responses=problem_responses(UnknownDelivery),
)
async def list_attempts(delivery_id: str, session: SessionDep, _: Manager) -> list[AttemptOut]:
    repo = WebhookRepository(session)
    if await repo.delivery(delivery_id) is None:
        raise UnknownDelivery("No delivery has this id.")
    return [AttemptOut.model_validate(row) for row in await repo.attempts(delivery_id)]


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses=problem_responses(UnknownDelivery, EndpointDisabled),
)
async def replay(delivery_id: str, session: SessionDep, _: Manager, now: NowDep) -> DeliveryOut:
    """Send the same message again (same ``webhook-id``, new timestamp and signature)."""
    return DeliveryOut.model_validate(await service.replay(session, delivery_id, now=now))


@router.post(
    "/sellers/{seller_id}/webhook/recover",
    response_model=RecoverOut,
    responses=problem_responses(UnknownSeller, EndpointDisabled, InvalidRequest),
)
async def recover(
    seller_id: str, body: RecoverIn, session: SessionDep, _: Manager, now: NowDep
) -> RecoverOut:
    """Replay every failed delivery of the seller created since ``since`` (until ``until``)."""
    replayed = await service.recover(
        session, seller_id, since=body.since, until=body.until, now=now
    )
    return RecoverOut(seller_id=seller_id, replayed=replayed)


@router.post(
    "/sellers/{seller_id}/webhook/enable",
    response_model=RecoverOut,
    responses=problem_responses(UnknownSeller),
)
async def enable(seller_id: str, session: SessionDep, _: Admin) -> RecoverOut:
    """Re-enable a disabled endpoint (failures reset; replay failures with ``recover``)."""
    await service.enable_endpoint(session, seller_id)
    return RecoverOut(seller_id=seller_id, replayed=0)
