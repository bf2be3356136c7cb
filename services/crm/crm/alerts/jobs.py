"""The crm worker's count of the open SLA stages at risk and overdue, for Prometheus
(``sla_open_stages``): what the alerts feed lists, as a number per stage the dashboard can chart."""

from __future__ import annotations

from crm.settings import CrmSettings
from crm.sla.repository import SlaRepository
from crm.sla.stages import STAGES, SlaPolicy, policy_from_settings
from shared.db.session import session_scope
from shared.jobs import PeriodicJob
from shared.runtime import Runtime


async def count_open_stages(runtime: Runtime[CrmSettings], policy: SlaPolicy) -> None:
    """Set ``sla_open_stages`` for every stage with a target, at the runtime's "now"."""
    targeted = [stage for stage in STAGES if policy.target(stage.name) is not None]
    async with session_scope(runtime.session_factory) as session:
        totals = await SlaRepository.from_session(session).open_stage_counts(
            targeted, runtime.clock()
        )
    metrics = runtime.metrics
    for stage in targeted:
        for state in ("at_risk", "overdue"):
            value = totals.get(f"{stage.name}__{state}", 0)
            metrics.sla_open_stages.labels(metrics.service, stage.name, state).set(value)


def open_stages_job(runtime: Runtime[CrmSettings]) -> PeriodicJob:
    policy = policy_from_settings(runtime.settings)

    async def count() -> None:
        await count_open_stages(runtime, policy)

    interval = runtime.settings.alerts_gauge_interval_s
    return PeriodicJob(name="crm.open_stages", action=count, interval_s=interval)
