"""The crm worker's count of the open SLA stages at risk and overdue, for Prometheus
(``sla_open_stages``): what the alerts feed lists, as a number per stage the dashboard can chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.settings import CrmSettings
from crm.sla.repository import Filters, SlaRepository
from crm.sla.stages import STAGES, SlaPolicy, policy_from_settings
from shared.db.session import session_scope
from shared.jobs import PeriodicJob
from shared.runtime import Runtime

_EVER = datetime(2000, 1, 1, tzinfo=UTC)


async def count_open_stages(runtime: Runtime[CrmSettings], policy: SlaPolicy) -> None:
    """Set ``sla_open_stages`` for every stage with a target, at the runtime's "now"."""
    now = runtime.clock()
    async with session_scope(runtime.session_factory) as session:
        counts = await SlaRepository.from_session(session).open_counts(
            Filters(_EVER, now + timedelta(days=1)), None, now
        )
    totals = counts.get("all", {})
    metrics = runtime.metrics
    for stage in STAGES:
        if policy.target(stage.name) is None:
            continue
        for state in ("at_risk", "overdue"):
            value = totals.get(f"{stage.name}__{state}", 0)
            metrics.sla_open_stages.labels(metrics.service, stage.name, state).set(value)


def open_stages_job(runtime: Runtime[CrmSettings]) -> PeriodicJob:
    policy = policy_from_settings(runtime.settings)

    async def count() -> None:
        await count_open_stages(runtime, policy)

    interval = runtime.settings.alerts_gauge_interval_s
    return PeriodicJob(name="crm.open_stages", action=count, interval_s=interval)
