"""``seller.webhook-disabled.v1`` (dispatch stopped delivering to a seller's tool) becomes a row
of the managers' alerts feed. Ids and reasons only."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.alerts.repository import AlertsRepository
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import SellerWebhookDisabledV1
from shared.metrics import ServiceMetrics

log = structlog.get_logger(__name__)

WEBHOOK_DISABLED = "seller.webhook-disabled.v1"


def webhook_disabled_handler(clock: Clock, metrics: ServiceMetrics) -> Handler:
    async def on_webhook_disabled(session: AsyncSession, envelope: Envelope) -> None:
        event = SellerWebhookDisabledV1.model_validate(envelope.data)
        await AlertsRepository.from_session(session).record_disabled(
            event_id=envelope.id,
            seller_id=event.seller_id,
            reason=event.reason,
            consecutive_failures=event.consecutive_failures,
            disabled_at=event.disabled_at,
            now=clock(),
        )
        metrics.webhooks_disabled.labels(metrics.service, event.reason).inc()
        log.info("alerts.webhook_disabled", seller_id=event.seller_id, reason=event.reason)

    return on_webhook_disabled


def alert_handlers(clock: Clock, metrics: ServiceMetrics) -> dict[str, Handler]:
    """The alerts' handlers, to merge into a consumer of ``vo.leads``."""
    return {WEBHOOK_DISABLED: webhook_disabled_handler(clock, metrics)}
