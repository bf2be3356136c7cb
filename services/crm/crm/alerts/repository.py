"""SQL of the managers' alerts: disabled webhooks (stored from the events) and the leads whose
running SLA stage is past its at-risk instant (read from ``sla_fact`` at the request's "now")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute

from crm.alerts.models import DisabledReason, WebhookDisabledAlert
from crm.sla.models import sla_fact
from crm.sla.stages import Stage
from shared.db.repository import Repository


@dataclass(frozen=True)
class Position:
    """Where a page of the feed ends: its instant, its kind's rank and its key."""

    at: datetime
    rank: int
    key: str


@dataclass(frozen=True)
class AtRiskLead:
    lead_id: str
    risk_at: datetime
    due_at: datetime
    started_at: datetime
    source: str | None
    site: str | None
    seller_id: str | None
    operator_id: str | None


def _after(
    at: ColumnElement[datetime] | InstrumentedAttribute[datetime],
    key: ColumnElement[str] | InstrumentedAttribute[str],
    rank: int,
    after: Position | None,
) -> list[ColumnElement[bool]]:
    """Rows of one kind (``rank``) that come after ``after`` in (at, rank, key) order."""
    if after is None:
        return []
    if rank > after.rank:
        return [at >= after.at]
    if rank < after.rank:
        return [at > after.at]
    return [tuple_(at, key) > tuple_(after.at, after.key)]


class AlertsRepository(Repository):
    async def record_disabled(
        self,
        *,
        event_id: str,
        seller_id: str,
        reason: DisabledReason,
        consecutive_failures: int,
        disabled_at: datetime,
        now: datetime,
    ) -> None:
        """One row per event (a re-delivery under the same id adds nothing)."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(WebhookDisabledAlert)
            .values(
                event_id=event_id,
                seller_id=seller_id,
                reason=reason,
                consecutive_failures=consecutive_failures,
                disabled_at=disabled_at,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        await self.session.execute(statement)

    async def disabled_webhooks(
        self, *, since: datetime, rank: int, after: Position | None, limit: int
    ) -> list[WebhookDisabledAlert]:
        table = WebhookDisabledAlert
        query = (
            select(table)
            .where(
                table.disabled_at >= since,
                *_after(table.disabled_at, table.event_id, rank, after),
            )
            .order_by(table.disabled_at, table.event_id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars().all())

    async def at_risk(
        self, stage: Stage, *, now: datetime, rank: int, after: Position | None, limit: int
    ) -> list[AtRiskLead]:
        """Open leads whose ``stage`` runs past its at-risk instant, not yet past its deadline,
        in (risk_at, lead_id) order."""
        c = sla_fact.c
        risk_at, due_at = c[stage.risk_column], c[stage.due_column]
        query = (
            select(
                c.lead_id,
                risk_at.label("risk_at"),
                due_at.label("due_at"),
                c[stage.start_column].label("started_at"),
                c.source,
                c.site,
                c.seller_id,
                c.operator_id,
            )
            .where(
                c[stage.start_column].is_not(None),
                c[stage.end_column].is_(None),
                c.closed_at.is_(None),
                risk_at <= now,
                due_at > now,
                *_after(risk_at, c.lead_id, rank, after),
            )
            .order_by(risk_at, c.lead_id)
            .limit(limit)
        )
        rows = (await self.session.execute(query)).mappings().all()
        return [AtRiskLead(**row) for row in rows]
