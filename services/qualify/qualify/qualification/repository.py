"""SQL of a qualification (an operator qualifies every lead they handle): the lead closed by one
conditional UPDATE that returns it (only while the caller holds its claim), the qualification
inserted. Each statement is built once and run with parameters: no ORM object tracked, no
unit-of-work flush."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NoReturn, cast

from sqlalchemy import Table, bindparam, func, insert, inspect, select, true, update
from sqlalchemy.orm import configure_mappers

from qualify.leads import state
from qualify.models import Qualification, QueuedLead
from qualify.problems import ClaimRequired, LeadNotFound
from shared.db.repository import Repository

_LEADS = cast(Table, QueuedLead.__table__)

_LEAD = select(_LEADS).where(_LEADS.c.lead_id == bindparam("lead_id"))

_LEAD_CLASS = inspect(QueuedLead).class_manager

_INSERT_QUALIFICATION = insert(cast(Table, Qualification.__table__))


def _closed_values(operator: Any, now: Any) -> dict[str, Any]:
    """The columns ``state.close`` sets to close a lead as qualified, and their values (the
    operator and the instant as parameters): the state machine stays their one definition."""
    closed = SimpleNamespace()
    state.close(cast(QueuedLead, closed), state.QUALIFIED, by=operator, at=now)
    return vars(closed)


def _close_held_statement() -> Any:
    """The conditional UPDATE closing a lead as qualified (what ``state.close`` changes, the
    routing path, the site when the qualification names one), only while the operator holds an
    unexpired claim on the open lead (``state.require_holder``); it returns the closed lead. One
    round trip where a read FOR UPDATE then an UPDATE took two."""
    c = _LEADS.c
    now = bindparam("_now", type_=c.closed_at.type)
    operator = bindparam("_operator_id", type_=c.claimed_by.type)
    return (
        update(_LEADS)
        .where(
            c.lead_id == bindparam("_lead_id"),
            c.is_open == true(),
            c.claimed_by == operator,
            c.claim_expires_at > now,
        )
        .values(
            {
                **_closed_values(operator, now),
                "routing_path": bindparam("_path", type_=c.routing_path.type),
                "site": func.coalesce(bindparam("_site", type_=c.site.type), c.site),
            }
        )
        .returning(*c)
    )


_CLOSE_HELD = _close_held_statement()


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
    async def close_held(
        self, lead_id: str, *, operator_id: str, now: datetime, site: str | None, path: str
    ) -> QueuedLead:
        """Close the lead as qualified if ``operator_id`` holds its claim, and return it closed
        as a plain object outside the session (row-locked until the end of the transaction on
        PostgreSQL). Otherwise the problem saying why: 404, 409 closed, claimed or unclaimed."""
        params = {
            "_lead_id": lead_id,
            "_operator_id": operator_id,
            "_now": now,
            "_site": site,
            "_path": path,
        }
        row = (await self.session.execute(_CLOSE_HELD, params)).first()
        if row is not None:
            return lead_from_row(row._mapping)
        await self._refuse(lead_id, operator_id, now)

    async def _refuse(self, lead_id: str, operator_id: str, now: datetime) -> NoReturn:
        """Raise the problem of a qualification the conditional UPDATE refused, read from the
        lead as it is now."""
        row = (await self.session.execute(_LEAD, {"lead_id": lead_id})).first()
        if row is None:
            raise LeadNotFound()
        state.require_holder(lead_from_row(row._mapping), operator_id, now)
        # Claimed by the caller since the UPDATE (a race): refused as without a claim.
        raise ClaimRequired("Claim the lead first (no claim, or the claim expired).")

    async def add(self, qualification: dict[str, Any]) -> None:
        """Insert a qualification row (its columns as keys)."""
        await self.session.execute(_INSERT_QUALIFICATION, qualification)
