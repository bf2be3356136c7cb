"""The SLA's handler: every lead event updates the lead's ``sla_fact`` row; a stage that ends is
observed in the stage-duration histograms (labels: stage and source, never personal data)."""

from __future__ import annotations

from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from crm.sla.calendars import CALENDAR_CHANGED, CalendarSpec
from crm.sla.observations import Observation, observe
from crm.sla.repository import Applied, SlaRepository
from crm.sla.stages import SlaPolicy
from shared.clock import Clock
from shared.consumer import Handler
from shared.events import Envelope
from shared.events.payloads import SiteCalendarChangedV1
from shared.metrics import ServiceMetrics

log = structlog.get_logger(__name__)


def make_handler(policy: SlaPolicy, metrics: ServiceMetrics, clock: Clock) -> Handler:
    service = metrics.service

    def observed(observation: Observation, context: dict[str, Any], applied: Applied) -> None:
        """Once the observation is applied: its lead's outcome, revenue and stages ended."""
        source_label = applied.row["source"] or "unknown"
        if "closed_at" in applied.newly_set:
            outcome = applied.row["outcome"]
            metrics.leads_closed.labels(service, source_label, outcome).inc()
        if "sale_price_eur" in applied.newly_set:
            metrics.sales_revenue.labels(service, source_label).inc(applied.row["sale_price_eur"])
        for stage, measure, source in applied.ended:
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
            **context,  # the event's (trace id, consumer, type): applied after its handler
            lead_id=observation.lead_id,
            milestones=sorted(observation.milestones),
            ended=[stage.name for stage, _, _ in applied.ended],
        )

    async def on_lead_event(session: AsyncSession, envelope: Envelope) -> None:
        # event_lag_seconds and the trace id are handled by shared.consumer for every consumer.
        observation = observe(envelope)
        if observation is None:
            return
        # Applied when the transaction commits, with the batch's other leads' observations:
        # their rows read (or inserted) together, each written once.
        SlaRepository.from_session(session).defer(
            observation,
            policy,
            now=clock(),
            done=partial(observed, observation, structlog.contextvars.get_contextvars()),
        )

    return on_lead_event


def calendar_handler(policy: SlaPolicy, clock: Clock) -> Handler:
    """``site.calendar-changed.v1``: store the calendar (the latest of a key wins) and measure
    again the leads it concerns (provisional ones; open ones too when the calendar changed)."""

    async def on_calendar_changed(session: AsyncSession, envelope: Envelope) -> None:
        event = SiteCalendarChangedV1.model_validate(envelope.data)
        repository = SlaRepository.from_session(session)
        now = clock()
        changed = await repository.save_calendar(
            event.calendar_id, CalendarSpec.of_event(event), changed_at=event.changed_at, now=now
        )
        leads = await repository.leads_on_calendar(event.calendar_id, only_provisional=not changed)
        for lead_id in leads:
            await repository.apply(Observation(lead_id), policy, now=now)
        log.info(
            "sla.calendar_received",
            calendar_id=event.calendar_id,
            change=event.change,
            changed=changed,
            leads_measured_again=len(leads),
        )

    return on_calendar_changed


def calendar_handlers(policy: SlaPolicy, clock: Clock) -> dict[str, Handler]:
    return {CALENDAR_CHANGED: calendar_handler(policy, clock)}
