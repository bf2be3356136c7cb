"""The SLA consumer: every lead event updates the lead's ``sla_fact`` row; a stage that ends is
observed in the stage-duration histograms (labels: stage and source, never personal data)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.sla.observations import observe
from crm.sla.repository import SlaRepository
from crm.sla.stages import SlaPolicy
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.metrics import ServiceMetrics

log = structlog.get_logger(__name__)

CONSUMER_NAME = "crm.sla"


def make_handler(policy: SlaPolicy, metrics: ServiceMetrics, clock: Clock) -> Handler:
    service = metrics.service

    async def on_lead_event(session: AsyncSession, envelope: Envelope) -> None:
        # event_lag_seconds and the trace id are handled by shared.consumer for every consumer.
        observation = observe(envelope)
        if observation is None:
            return
        ended = await SlaRepository.from_session(session).apply(observation, policy, now=clock())
        for stage, measure, source in ended:
            assert measure.business_s is not None
            assert measure.wall_s is not None
            labels = (service, stage.name, source or "unknown")
            metrics.sla_stage_duration.labels(*labels).observe(measure.business_s / 60)
            metrics.sla_stage_wall.labels(*labels).observe(measure.wall_s)
            target = policy.target(stage.name)
            if target is not None and measure.business_s > target * 60:
                metrics.sla_breaches.labels(*labels).inc()
        log.info(
            "sla.fact_updated",
            lead_id=observation.lead_id,
            milestones=sorted(observation.milestones),
            ended=[stage.name for stage, _, _ in ended],
        )

    return on_lead_event
