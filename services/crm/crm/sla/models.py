"""The ``sla_fact`` table: one row per lead, ids and instants only (no personal data).

Milestones are ``<milestone>_at``; each stage has ``<stage>_business_s`` / ``<stage>_wall_s``
(set once it ended) and ``<stage>_due_at`` / ``<stage>_risk_at`` (its deadline and at-risk instant,
set once it started and when it has a target). The summary reads this table with indexed range
queries on ``received_at`` and aggregates in the database. Its columns follow the milestones and
stages of ``crm/sla/stages.py``, so it stays a Core table built from them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, false, text

from crm.models import Base
from crm.sla.stages import MILESTONES, STAGES, milestone_column
from shared.db.types import UtcDateTime


def _columns() -> list[Column[object]]:
    columns: list[Column[object]] = [
        Column("lead_id", String(36), primary_key=True),
        Column("source", String(32)),
        Column("site", String(64)),
        Column("seller_id", String(64)),
        Column("operator_id", String(64)),
        Column("path", String(16)),  # qualify or direct, once known
        Column("channel", String(16)),  # in_store or full_web (whose calendar: site or pool)
        # The site's stages were measured on the default (call centre's) hours: the lead's
        # calendar was not known yet; they are measured again when it arrives.
        Column("calendar_provisional", Boolean, nullable=False, server_default=false()),
        Column("sale_price_eur", Integer),  # from lead.won.v2, when the seller gave it
        Column("outcome", String(16)),
        Column("closed_at", UtcDateTime()),
        Column("updated_at", UtcDateTime(), nullable=False),
    ]
    columns += [Column(milestone_column(milestone), UtcDateTime()) for milestone in MILESTONES]
    for stage in STAGES:
        columns += [
            Column(stage.business_column, Integer),
            Column(stage.wall_column, Integer),
            Column(stage.due_column, UtcDateTime()),
            Column(stage.risk_column, UtcDateTime()),
        ]
    return columns


sla_fact = Table(
    "sla_fact",
    Base.metadata,
    *_columns(),
    Index("ix_sla_fact_received_at", "received_at"),
    Index("ix_sla_fact_source_received_at", "source", "received_at"),
    Index("ix_sla_fact_site_received_at", "site", "received_at"),
    Index("ix_sla_fact_seller_id_received_at", "seller_id", "received_at"),
    Index("ix_sla_fact_operator_id_received_at", "operator_id", "received_at"),
    Index("ix_sla_fact_path_received_at", "path", "received_at"),
    # The open leads (alerts feed, open-stage gauge): a small share of the table, read often.
    Index(
        "ix_sla_fact_open",
        "received_at",
        postgresql_where=text("closed_at IS NULL"),
        sqlite_where=text("closed_at IS NULL"),
    ),
)


# Made by a migration outside this model (PostgreSQL only): how the API's columnar copy of the
# facts follows their changes (crm/sla/fact_copy/). The services never write them.
DATABASE_ONLY = frozenset(
    {
        "sla_fact.fact_no",
        "sla_fact.changed_xid",
        "ix_sla_fact_fact_no",
        "ix_sla_fact_changed_xid",
        "sla_fact_generation",
    }
)
Base.metadata.info.setdefault("database_only", set()).update(DATABASE_ONLY)


sla_calendar = Table(
    "sla_calendar",
    Base.metadata,
    Column("calendar_id", String(64), primary_key=True),  # site id, or "full_web"
    Column("pool", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("opening_hours", String(1000), nullable=False),
    Column("holiday_subdivision", String(16)),
    Column("observe_holidays", Boolean, nullable=False),
    Column("closures", JSON, nullable=False),  # ISO dates
    Column("changed_at", UtcDateTime(), nullable=False),  # dispatch's instant: the latest wins
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The calendars dispatch enforces, from ``site.calendar-changed.v1`` (one row per site and one
for the full-web pool): the only source of the sites' business time."""
