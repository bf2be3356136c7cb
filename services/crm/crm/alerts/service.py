"""The managers' alerts feed: leads at risk of breaching an SLA stage (running, past the
at-risk share of the target, not yet late: the SLA's own ``at_risk``) and sellers' webhooks
disabled in the recent window, merged in (instant, kind, key) order with a keyset cursor."""

from __future__ import annotations

from datetime import datetime, timedelta

from crm.alerts.repository import AlertsRepository, AtRiskLead, Position
from crm.alerts.schemas import AlertKind, AlertOut
from crm.sla.stages import STAGES, SlaPolicy

# The kinds' ranks in the feed's order: one per SLA stage (its index), then the webhooks.
WEBHOOK_RANK = len(STAGES)


def _lead_alert(stage_index: int, lead: AtRiskLead, policy: SlaPolicy) -> AlertOut:
    stage = STAGES[stage_index]
    return AlertOut(
        id=f"lead_at_risk:{stage.name}:{lead.lead_id}",
        kind="lead_at_risk",
        at=lead.risk_at,
        lead_id=lead.lead_id,
        stage=stage.name,
        target_minutes=policy.target(stage.name),
        started_at=lead.started_at,
        due_at=lead.due_at,
        source=lead.source,
        site=lead.site,
        seller_id=lead.seller_id,
        operator_id=lead.operator_id,
    )


async def feed(
    repository: AlertsRepository,
    policy: SlaPolicy,
    *,
    now: datetime,
    kinds: frozenset[AlertKind],
    webhook_window: timedelta,
    after: Position | None,
    limit: int,
) -> tuple[list[AlertOut], Position | None]:
    """A page of the feed and the position after it (None: nothing more now)."""
    found: list[tuple[Position, AlertOut]] = []
    if "lead_at_risk" in kinds:
        for index, stage in enumerate(STAGES):
            if policy.target(stage.name) is None:
                continue
            leads = await repository.at_risk(
                stage, now=now, rank=index, after=after, limit=limit + 1
            )
            found += [
                (Position(lead.risk_at, index, lead.lead_id), _lead_alert(index, lead, policy))
                for lead in leads
            ]
    if "webhook_disabled" in kinds:
        rows = await repository.disabled_webhooks(
            since=now - webhook_window, rank=WEBHOOK_RANK, after=after, limit=limit + 1
        )
        found += [
            (
                Position(row.disabled_at, WEBHOOK_RANK, row.event_id),
                AlertOut(
                    id=f"webhook_disabled:{row.event_id}",
                    kind="webhook_disabled",
                    at=row.disabled_at,
                    seller_id=row.seller_id,
                    reason=row.reason,
                    consecutive_failures=row.consecutive_failures,
                ),
            )
            for row in rows
        ]
    found.sort(key=lambda entry: (entry[0].at, entry[0].rank, entry[0].key))
    page = found[:limit]
    return [alert for _, alert in page], (page[-1][0] if len(found) > limit else None)
