"""SQL of a qualification (an operator qualifies every lead they handle): the lead closed by one
conditional UPDATE that returns it (only while the caller holds its claim), the qualification
inserted and its event staged. On PostgreSQL the three are one statement (data-modifying CTEs);
on SQLite three. Each statement is built once and run with parameters: no ORM object tracked,
no unit-of-work flush."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, NoReturn, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    LargeBinary,
    Table,
    Text,
    bindparam,
    case,
    func,
    insert,
    inspect,
    literal,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import configure_mappers

from qualify.leads import state
from qualify.models import Qualification, QueuedLead
from qualify.problems import ClaimRequired, LeadNotFound
from shared.db.prepared import Prepared
from shared.db.repository import Repository

_LEADS = cast(Table, QueuedLead.__table__)

_LEAD = select(_LEADS).where(_LEADS.c.lead_id == bindparam("lead_id"))

_LEAD_CLASS = inspect(QueuedLead).class_manager

_QUALIFICATIONS = cast(Table, Qualification.__table__)

_INSERT_QUALIFICATION = insert(_QUALIFICATIONS)


def _closed_values(operator: Any, now: Any) -> dict[str, Any]:
    """The columns ``state.close`` sets to close a lead as qualified, and their values (the
    operator and the instant as parameters): the state machine stays their one definition."""
    closed = SimpleNamespace()
    state.close(cast(QueuedLead, closed), state.QUALIFIED, by=operator, at=now)
    # A cleared column as the SQL NULL, not a parameter: no argument for it to pass (a
    # ``Prepared`` statement takes the parameters' values, its non-null literals included).
    return {name: null() if value is None else value for name, value in vars(closed).items()}


def _close_held_statement() -> Any:
    """The conditional UPDATE closing a lead as qualified (what ``state.close`` changes, the
    routing path, the site when the qualification names one), only while the operator holds an
    unexpired claim on the open lead (``state.require_holder``). One round trip where a read
    FOR UPDATE then an UPDATE took two."""
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
    )


_CLOSE_HELD = _close_held_statement().returning(*_LEADS.c)


def _utc_text(instant: Any) -> ColumnElement[str]:
    """An instant as pydantic writes it in JSON: ``2026-12-03T09:00:00Z``, with ``.ffffff``
    only when it has microseconds."""
    utc = instant.op("AT TIME ZONE")(literal("UTC"))
    micros = func.to_char(utc, "US")
    return (
        func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS')
        + case((micros == "000000", ""), else_="." + micros)
        + "Z"
    )


@cache
def _qualify_held_statement(outbox: Table, event_columns: tuple[str, ...]) -> Any:
    """PostgreSQL: the closing UPDATE, the qualification's INSERT and its event's INSERT as one
    statement, ``WITH closed AS (UPDATE … RETURNING …), added AS (INSERT … SELECT … FROM
    closed), staged AS (INSERT INTO outbox … SELECT … FROM closed) SELECT … FROM closed``: both
    rows are written exactly when the lead closed. The lead's own fields are filled from the
    closed row: the qualification's ``vehicle_ad_ref`` defaults to its ad (``_data`` || …), the
    event's value is ``_event_value`` || its source, received_at, contact and vehicle_ad_ref.
    The other outbox columns are the parameters ``_event_<column>``; it returns the row's
    contact and ad (nothing: refused)."""
    c = _LEADS.c
    closed = (
        _close_held_statement()
        .returning(c.lead_id, c.source, c.received_at, c.full_name, c.email, c.phone, c.ad_ref)
        .cte("closed")
    )
    k = closed.c
    ad_ref = func.coalesce(bindparam("_vehicle_ad_ref", type_=c.ad_ref.type), k.ad_ref)

    def merged(document: Any, **keys: Any) -> Any:
        pairs = [part for key, value in keys.items() for part in (literal(key), value)]
        return document.op("||", return_type=JSONB)(func.jsonb_build_object(*pairs))

    data = merged(bindparam("_data", type_=JSONB), vehicle_ad_ref=ad_ref)
    added = insert(_QUALIFICATIONS).from_select(
        ["lead_id", "operator_id", "operator_name", "qualified_at", "data"],
        select(
            k.lead_id,
            bindparam("_operator_id", type_=_QUALIFICATIONS.c.operator_id.type),
            bindparam("_operator_name", type_=_QUALIFICATIONS.c.operator_name.type),
            bindparam("_now", type_=_QUALIFICATIONS.c.qualified_at.type),
            data.cast(JSON),
        ).select_from(closed),
    )
    contact = func.jsonb_build_object(
        "first_name",
        null(),
        "last_name",
        null(),
        "full_name",
        k.full_name,
        "email",
        k.email,
        "phone",
        k.phone,
    )
    value = merged(
        func.convert_from(bindparam("_event_value", type_=LargeBinary), "UTF8").cast(JSONB),
        source=k.source,
        received_at=_utc_text(k.received_at),
        contact=contact,
        vehicle_ad_ref=ad_ref,
    )
    columns: dict[str, ColumnElement[Any]] = {
        name: bindparam(f"_event_{name}", type_=outbox.c[name].type) for name in event_columns
    }
    columns["value"] = func.convert_to(value.cast(Text), "UTF8")
    staged = insert(outbox).from_select(
        list(columns), select(*columns.values()).select_from(closed)
    )
    return (
        select(k.email, k.phone, k.ad_ref).add_cte(added.cte("added")).add_cte(staged.cte("staged"))
    )


@cache
def _qualify_held_prepared(
    outbox: Table, event_columns: tuple[str, ...], dialect: Dialect
) -> Prepared:
    """``_qualify_held_statement`` compiled once to the driver's SQL (``shared.db.prepared``):
    ~20 parameters per qualification built positionally. What it returns is text (no result
    conversion to skip)."""
    return Prepared.compile(_qualify_held_statement(outbox, event_columns), dialect)


@dataclass(frozen=True)
class Closed:
    """What the one-statement qualification returns of the lead it closed."""

    email: str | None
    phone: str | None
    ad_ref: str | None


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


async def _refuse(
    on: AsyncSession | AsyncConnection, lead_id: str, operator_id: str, now: datetime
) -> NoReturn:
    """Raise the problem of a qualification the conditional UPDATE refused, read from the lead
    as it is now."""
    row = (await on.execute(_LEAD, {"lead_id": lead_id})).first()
    if row is None:
        raise LeadNotFound()
    state.require_holder(lead_from_row(row._mapping), operator_id, now)
    # Claimed by the caller since the UPDATE (a race): refused as without a claim.
    raise ClaimRequired("Claim the lead first (no claim, or the claim expired).")


async def qualify_held(
    on: AsyncSession | AsyncConnection,
    qualification: dict[str, Any],
    *,
    site: str | None,
    path: str,
    outbox: Table,
    event: dict[str, Any],
) -> Closed:
    """PostgreSQL: ``close_held``, ``add`` and the staging of ``event`` in one precompiled
    statement, in the transaction of a session or on a connection as it is (in autocommit: a
    unit of work by itself, without an ORM session). ``qualification`` is the row to insert
    without the lead's ad (its ``data`` without ``vehicle_ad_ref`` when the lead's is meant);
    ``event`` the outbox row (``shared.outbox.event_row``) whose value's source, received_at,
    contact and vehicle_ad_ref the statement replaces with the closed lead's. The refusals are
    ``close_held``'s."""
    data = qualification["data"]
    params = {
        "_lead_id": qualification["lead_id"],
        "_operator_id": qualification["operator_id"],
        "_operator_name": qualification["operator_name"],
        "_now": qualification["qualified_at"],
        "_site": site,
        "_path": path,
        "_data": data,
        "_vehicle_ad_ref": data.get("vehicle_ad_ref"),
        **{f"_event_{name}": value for name, value in event.items()},
    }
    columns = tuple(sorted(name for name in event if name != "value"))
    dialect = on.get_bind().dialect if isinstance(on, AsyncSession) else on.dialect
    prepared = _qualify_held_prepared(outbox, columns, dialect)
    row = (await prepared.execute(on, prepared.arguments_of(params))).first()
    if row is not None:
        return Closed(*row)
    await _refuse(on, qualification["lead_id"], qualification["operator_id"], params["_now"])


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
        await _refuse(self.session, lead_id, operator_id, now)

    async def add(self, qualification: dict[str, Any]) -> None:
        """Insert a qualification row (its columns as keys)."""
        await self.session.execute(_INSERT_QUALIFICATION, qualification)
