"""SQL of a qualification (an operator qualifies every lead they handle): the lead read and
row-locked, the closed lead written back with one UPDATE, the qualification inserted. Each
statement is built once and run with parameters: no ORM object tracked, no unit-of-work flush."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, inspect, select, update
from sqlalchemy.orm import configure_mappers

from qualify.models import Qualification, QueuedLead
from qualify.problems import LeadNotFound
from shared.db.repository import Repository

_LEADS = cast(Table, QueuedLead.__table__)

# The lead, row-locked until the end of the transaction (PostgreSQL; SQLite serialises writers).
_LEAD_FOR_UPDATE = select(_LEADS).where(_LEADS.c.lead_id == bindparam("lead_id")).with_for_update()

_LEAD_CLASS = inspect(QueuedLead).class_manager

_INSERT_QUALIFICATION = insert(cast(Table, Qualification.__table__))

# What closing a lead as qualified changes (``state.close``, the routing path, the site).
CLOSED_COLUMNS = (
    "status",
    "is_open",
    "handled_by",
    "closed_at",
    "claimed_by",
    "claimed_by_name",
    "claimed_at",
    "claim_expires_at",
    "callback_at",
    "callback_timezone",
    "callback_by",
    "callback_set_at",
    "callback_note",
    "routing_path",
    "site",
)


_WRITE_CLOSED = (
    update(_LEADS)
    .where(_LEADS.c.lead_id == bindparam("_lead_id"))
    .values({name: bindparam(f"_v_{name}", type_=_LEADS.c[name].type) for name in CLOSED_COLUMNS})
)


def lead_from_row(row: Mapping[Any, Any]) -> QueuedLead:
    """A ``QueuedLead`` filled as the ORM's loader fills an object (the constructor's
    per-attribute events cost ~90 us for this table's columns, this ~10 us); it joins no session.

    The mappers are configured first: the constructor would do it, ``new_instance`` does not,
    and an API process whose first ORM object is this one would have attributes without their
    implementation (an ``AttributeError`` on the first read). Cheap once configured."""
    configure_mappers()
    lead = _LEAD_CLASS.new_instance()
    lead.__dict__.update(row)
    return lead


class QualificationRepository(Repository):
    async def lead_for_update(self, lead_id: str) -> QueuedLead:
        """The lead as a plain object outside the session (its changes are written by
        ``write_closed``, never by a flush), row-locked; a 404 problem when unknown."""
        row = (await self.session.execute(_LEAD_FOR_UPDATE, {"lead_id": lead_id})).first()
        if row is None:
            raise LeadNotFound()
        return lead_from_row(row._mapping)

    async def write_closed(self, lead: QueuedLead) -> None:
        """Write what closing ``lead`` changed (``CLOSED_COLUMNS``) in one UPDATE."""
        params = {f"_v_{name}": getattr(lead, name) for name in CLOSED_COLUMNS}
        params["_lead_id"] = lead.lead_id
        result = cast(CursorResult[Any], await self.session.execute(_WRITE_CLOSED, params))
        if result.rowcount != 1:  # erased meanwhile (SQLite: the read locked nothing)
            raise LeadNotFound()

    async def add(self, qualification: dict[str, Any]) -> None:
        """Insert a qualification row (its columns as keys)."""
        await self.session.execute(_INSERT_QUALIFICATION, qualification)
