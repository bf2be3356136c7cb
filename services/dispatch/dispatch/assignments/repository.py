"""SQL of leads to route and their assignments (offers, the sellers' work on them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    cast as sql_cast,
    func,
    insert,
    inspect,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from dispatch.assignments.state import (
    ACCEPTED,
    HANDED_BACK,
    LEAD_UNASSIGNED,
    OFFERED,
    OPEN_LEAD_STATUSES,
    REASSIGNED_REASON,
    SCHEDULED,
)
from dispatch.directory.repository import best_schedule_id
from dispatch.directory.schemas import SellerMode
from dispatch.models import (
    Appointment,
    Assignment,
    ContactSchedule,
    DispatchLead,
    LeadContactKey,
    Seller,
    Site,
    SuppressedContact,
    Timer,
    VehicleStock,
    WebhookDelivery,
)
from dispatch.privacy.repository import PrivacyRepository
from dispatch.repositories.loaded import Columns, loaded
from dispatch.routing.repository import (
    PoolKey,
    SellerRef,
    forget_prefetched,
    page_lateral,
    pool_offered,
    pool_released,
    prefetch,
    remembers,
)
from dispatch.routing.strategy import SortKey
from dispatch.timers.repository import TimerRepository
from dispatch.webhooks.repository import WebhookRepository
from shared.db.prepared import Prepared
from shared.db.repository import Repository
from shared.db.session import wake_after_commit
from shared.outbox import insert_into

_LEAD_ID = select(DispatchLead.lead_id).where(DispatchLead.lead_id == bindparam("lead_id"))
# Intake's one read: is the lead recorded already, has any of its contacts objected, and the
# site its qualification chose (routing and the contact schedule read it next).
_PROBE = select(
    _LEAD_ID.exists().label("recorded"),
    select(SuppressedContact.contact_hash)
    .where(SuppressedContact.contact_hash.in_(bindparam("hashes", expanding=True)))
    .exists()
    .label("suppressed"),
).subquery("probe")
_INTAKE_PROBE = (
    select(_PROBE.c.recorded, _PROBE.c.suppressed, Site, VehicleStock, ContactSchedule)
    .select_from(_PROBE)
    .outerjoin(Site, Site.id == bindparam("site_id"))
    .outerjoin(VehicleStock, VehicleStock.ad_ref == bindparam("ad_ref"))
    .outerjoin(
        ContactSchedule,
        ContactSchedule.id == best_schedule_id(bindparam("source"), bindparam("site_id")),
    )
)


@dataclass(frozen=True)
class _ProbePlan:
    """The intake probe with a pool's first page as driver SQL compiled once, and where each
    model's columns are in its rows."""

    prepared: Prepared
    site: Columns
    vehicle: Columns
    schedule: Columns
    seller: Columns


def _columns_of(model: type[Any], columns: Any) -> list[ColumnElement[Any]]:
    """``model``'s column attributes, in mapper order, as columns of ``columns`` (a table's or
    a subquery's ``.c``)."""
    return [columns[prop.columns[0].name] for prop in inspect(model).column_attrs]


@cache
def _intake_probe_plan(
    pool: SellerMode, order: tuple[SortKey, ...], dialect: Dialect
) -> _ProbePlan:
    """PostgreSQL's intake probe with the first page of a pool in an order (``page_lateral``):
    a row per seller of the page (one with no seller when the page is empty), every column
    plain (no ORM loading: ``dispatch.repositories.loaded`` makes the instances the step
    uses), the contact hashes one array parameter (no IN list to expand at each execution).
    Built and compiled once per pool, order and dialect."""
    page, _, outer_order = page_lateral(pool, order)
    sites, vehicles, schedules = _table(Site), _table(VehicleStock), _table(ContactSchedule)
    suppressed = _table(SuppressedContact)
    hashes = sql_cast(bindparam("hashes", type_=ARRAY(String())), ARRAY(String()))
    probe = select(
        _LEAD_ID.exists().label("recorded"),
        select(suppressed.c.contact_hash)
        .where(suppressed.c.contact_hash == any_(hashes))
        .exists()
        .label("suppressed"),
    ).subquery("probe")
    groups = (
        _columns_of(Site, sites.c),
        _columns_of(VehicleStock, vehicles.c),
        _columns_of(ContactSchedule, schedules.c),
        _columns_of(Seller, page.c),
    )
    columns = [column for group in groups for column in group]
    statement = (
        select(probe.c.recorded, probe.c.suppressed, *columns)
        .select_from(probe)
        .outerjoin(sites, sites.c.id == bindparam("site_id"))
        .outerjoin(vehicles, vehicles.c.ad_ref == bindparam("ad_ref"))
        .outerjoin(
            schedules,
            schedules.c.id == best_schedule_id(bindparam("source"), bindparam("site_id")),
        )
        .outerjoin(page, true())
        .order_by(*outer_order)
    )
    starts = [2]  # after ``recorded`` and ``suppressed``
    for group in groups[:-1]:
        starts.append(starts[-1] + len(group))
    models = (Site, VehicleStock, ContactSchedule, Seller)
    site, vehicle, schedule, seller = (
        Columns(model, group, start, dialect)
        for model, group, start in zip(models, groups, starts, strict=True)
    )
    return _ProbePlan(Prepared.compile(statement, dialect), site, vehicle, schedule, seller)


# New rows are written by prebuilt INSERTs. The step's pending changes do not change what is
# inserted: they wait for its next flush (a session flushes them before any statement else).
_INSERT_LEAD = insert(cast(Table, DispatchLead.__table__))
_LEAD_COLUMNS = tuple(column.key for column in DispatchLead.__mapper__.column_attrs)
_INSERT_ASSIGNMENT = insert(cast(Table, Assignment.__table__))
_ASSIGNMENT_COLUMNS = tuple(column.key for column in Assignment.__mapper__.column_attrs)
# A seller's load changes by atomic increments in SQL (concurrent offers and call-backs of other
# leads of the seller), prebuilt: an ORM attribute set to a SQL expression is flushed by an
# UPDATE the unit of work builds anew each time.
_sellers = cast(Table, Seller.__table__)
_SELLER_OFFERED = (
    update(_sellers)
    .where(_sellers.c.id == bindparam("seller_id"))
    .values(open_count=_sellers.c.open_count + 1, last_offered_at=bindparam("now"))
)
_SELLER_RELEASED = (
    update(_sellers)
    .where(_sellers.c.id == bindparam("seller_id"))
    .values(open_count=_sellers.c.open_count - 1)
)


class IntakeProbe(NamedTuple):
    recorded: bool
    suppressed: bool
    site: Site | None
    vehicle: VehicleStock | None  # the lead's vehicle's stock row (None: none, or no vehicle)
    schedule: ContactSchedule | None  # the most specific schedule of its source and site


@dataclass(frozen=True)
class NewLeadOffer:
    """A lead recorded in this step and its first offer, written together: the lead, its
    contact hashes, the assignment, the seller's load, the accept deadline's timer row, the
    offer's message row and its event's outbox row (``dispatch.timers.repository.timer_row``,
    ``dispatch.webhooks.service.webhook_message``, ``shared.outbox.event_row``), staged in
    ``outbox``."""

    lead: DispatchLead
    contact_keys: Sequence[str]
    assignment: Assignment
    seller: Seller
    timer: dict[str, Any]
    message: dict[str, Any]
    outbox: Table
    event: dict[str, Any]


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _bound_values(table: Table, prefix: str) -> dict[str, Any]:
    """Every column of ``table`` but a database-generated id, bound as ``prefix`` + its key."""
    return {
        column.key: bindparam(f"{prefix}{column.key}", type_=column.type)
        for column in table.columns
        if not (column.primary_key and column.autoincrement is True)
    }


@cache
def _new_lead_offer_statement(outbox: Table) -> Update:
    """PostgreSQL writes a new lead's offer in one round trip: the INSERTs as CTEs of the
    seller's load UPDATE (foreign keys are checked at the end of the statement), its event's
    outbox row with them. Built once per outbox table, executed with parameters."""
    contact_keys = _table(LeadContactKey)
    writes = (
        insert(_table(DispatchLead)).values(_bound_values(_table(DispatchLead), "lead_")),
        insert(contact_keys).from_select(
            [contact_keys.c.lead_id, contact_keys.c.contact_hash],
            select(
                bindparam("lead_lead_id", type_=String()),
                func.unnest(
                    sql_cast(bindparam("contact_keys", type_=ARRAY(String())), ARRAY(String()))
                ),
            ),
        ),
        insert(_table(Assignment)).values(_bound_values(_table(Assignment), "assignment_")),
        insert(_table(Timer)).values(_bound_values(_table(Timer), "timer_")),
        insert(_table(WebhookDelivery)).values(_bound_values(_table(WebhookDelivery), "message_")),
        insert(outbox).values(_bound_values(outbox, "event_")),
    )
    statement = _SELLER_OFFERED
    for index, write in enumerate(writes):
        statement = statement.add_cte(write.cte(f"write_{index}"))
    return statement


# Where each parameter of the new lead's offer comes from, by its prefix: the lead's or the
# assignment's attribute (-2, -1), else an entry of a row (``_new_lead_offer_prepared``).
_OFFER_SOURCES = (("lead_", -2), ("assignment_", -1), ("timer_", 1), ("message_", 2), ("event_", 3))


@cache
def _new_lead_offer_prepared(
    outbox: Table, dialect: Dialect
) -> tuple[Prepared, tuple[tuple[int, str], ...]]:
    """``_new_lead_offer_statement`` compiled once for the dialect, and where each of its
    parameters is found, in order: (-2, attribute) of the lead, (-1, attribute) of the
    assignment, (0, key) of the seller/now/contact keys, (1..3, key) of the timer, message and
    event rows, (4, name) a constant of the statement."""
    prepared = Prepared.compile(_new_lead_offer_statement(outbox), dialect)
    plan: list[tuple[int, str]] = []
    for name in prepared.names:
        plan.append((4, name) if name in prepared.constants else _offer_source(name))
    return prepared, tuple(plan)


def _offer_source(name: str) -> tuple[int, str]:
    for prefix, index in _OFFER_SOURCES:
        if name.startswith(prefix):
            return index, name[len(prefix) :]
    return 0, name


class AssignmentRepository(Repository):
    """Locks, when a step takes several, are taken in one order: assignments (by id), then
    their leads, then timers (skipping those a firing holds); sellers' loads change by atomic
    increments. So a manager's move, a call-back and a timer on the same lead wait for each
    other instead of deadlocking."""

    @property
    def _locks(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # -- leads ----------------------------------------------------------------------------

    async def lead(self, lead_id: str) -> DispatchLead | None:
        return await self.session.get(DispatchLead, lead_id)

    async def intake_probe(
        self,
        lead_id: str,
        hashes: Sequence[str],
        *,
        site_id: str | None,
        source: str,
        ad_ref: str | None,
        page: PoolKey | None = None,
    ) -> IntakeProbe:
        """Whether the lead is recorded already, whether any of these contact hashes objected,
        the site, the vehicle's stock row and the contact schedule of the source at the site:
        one statement. The site is then the session's own copy as long as the caller holds it:
        the directory's look-ups of this step find it without a round trip. ``page``: the pool
        the lead will likely be routed to; on PostgreSQL its first page comes with the rest
        and is held for the step's routing (``dispatch.routing.repository.prefetch``). In
        store, that page is of the vehicle's site when its stock row says it is elsewhere
        (held unless this unit of work remembers that pool)."""
        params = {
            "lead_id": lead_id,
            "hashes": list(hashes),
            "site_id": site_id,
            "source": source,
            "ad_ref": ad_ref,
        }
        if (
            page is None
            or not self._locks
            or page[1] != (site_id if page[0] == "in_store" else None)
        ):
            forget_prefetched(self.session)
            row = (await self.session.execute(_INTAKE_PROBE, params)).one()
            return IntakeProbe(bool(row[0]), bool(row[1]), row[2], row[3], row[4])
        pool, _, order = page
        session = self.session
        plan = _intake_probe_plan(pool, order, session.get_bind().dialect)
        if session.new or session.dirty or session.deleted:
            await session.flush()  # what the ORM's execution would flush first
        rows = (await plan.prepared.execute(session, plan.prepared.arguments_of(params))).all()
        first = rows[0]
        site_values = plan.site.values(first)
        site = None if site_values is None else loaded(session, Site, site_values)
        vehicle_values = plan.vehicle.values(first)
        vehicle = None if vehicle_values is None else loaded(session, VehicleStock, vehicle_values)
        schedule_values = plan.schedule.values(first)
        schedule = (
            None if schedule_values is None else loaded(session, ContactSchedule, schedule_values)
        )
        # The caller checked that its pool is not remembered; the vehicle's site's may be.
        elsewhere = pool == "in_store" and vehicle is not None and vehicle.site_id != site_id
        if elsewhere:
            assert vehicle is not None
            page = (pool, vehicle.site_id, order)  # the page read is that site's
        if not (elsewhere and remembers(session, page)):
            sellers = [plan.seller.values(row) for row in rows]
            prefetch(
                session,
                page,
                [
                    (
                        SellerRef.read(session, values),
                        values["open_count"],
                        values["capacity"],
                        values["last_offered_at"],
                    )
                    for values in sellers
                    if values is not None
                ],
            )
        return IntakeProbe(bool(first[0]), bool(first[1]), site, vehicle, schedule)

    async def locked_lead(self, lead_id: str) -> DispatchLead | None:
        """The lead, locked for this transaction on PostgreSQL and read afresh (a step that
        waited for the lock sees what the other one committed)."""
        query = select(DispatchLead).where(DispatchLead.lead_id == lead_id)
        if self._locks:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def insert_lead(self, lead: DispatchLead) -> None:
        """Write a new lead with one prebuilt INSERT (no unit-of-work flush), then keep it in
        the session as if it had been read: its later changes are flushed as an UPDATE."""
        with self.session.no_autoflush:
            await self.session.execute(
                _INSERT_LEAD, {key: getattr(lead, key) for key in _LEAD_COLUMNS}
            )
        make_transient_to_detached(lead)
        self.session.add(lead)

    def unwritten(self, lead: DispatchLead) -> bool:
        """Whether the lead was created in this step and is not written yet."""
        return bool(inspect(lead).transient)

    async def write_if_new(self, lead: DispatchLead) -> bool:
        """Write a lead this step created and has not written yet (``insert_lead``, with its
        state so far); False when it is written already (its changes go with the next flush)."""
        if not inspect(lead).transient:
            return False
        await self.insert_lead(lead)
        return True

    async def unassigned_leads(
        self, *, site_id: str | None = None, limit: int | None = None
    ) -> Sequence[DispatchLead]:
        """Escalated leads nobody holds, oldest qualification first."""
        query = (
            select(DispatchLead)
            .where(DispatchLead.status == LEAD_UNASSIGNED)
            .order_by(DispatchLead.qualified_at, DispatchLead.lead_id)
            .limit(limit)
        )
        if site_id is not None:
            query = query.where(DispatchLead.site_id == site_id)
        return (await self.session.scalars(query)).all()

    async def open_leads_for_vehicle(self, ad_ref: str) -> Sequence[DispatchLead]:
        return (
            await self.session.scalars(
                select(DispatchLead).where(
                    DispatchLead.vehicle_ad_ref == ad_ref,
                    DispatchLead.status.in_(OPEN_LEAD_STATUSES),
                )
            )
        ).all()

    # -- assignments ----------------------------------------------------------------------

    async def insert(self, assignment: Assignment) -> None:
        """A new assignment, written at once by one prebuilt INSERT (no unit-of-work flush),
        then kept in the session as if read: its later changes are flushed as an UPDATE."""
        with self.session.no_autoflush:  # the lead's changes go with the offer's flush
            await self.session.execute(
                _INSERT_ASSIGNMENT, {key: getattr(assignment, key) for key in _ASSIGNMENT_COLUMNS}
            )
        make_transient_to_detached(assignment)
        self.session.add(assignment)

    async def locked(self, assignment_id: str) -> Assignment | None:
        """The assignment, locked for this transaction on PostgreSQL (concurrent call-backs and
        timers on it wait for each other)."""
        query = select(Assignment).where(Assignment.id == assignment_id)
        if self._locks:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def locked_open_of_lead(self, lead_id: str) -> Sequence[Assignment]:
        """The lead's open assignments, locked (by id), read afresh."""
        query = (
            select(Assignment)
            .where(Assignment.lead_id == lead_id, Assignment.is_open.is_(True))
            .order_by(Assignment.id)
        )
        if self._locks:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).all()

    async def locked_open_of_seller(self, seller_id: str) -> Sequence[Assignment]:
        """The seller's open offers and assignments, locked (by id), read afresh."""
        query = (
            select(Assignment)
            .where(Assignment.seller_id == seller_id, Assignment.is_open.is_(True))
            .order_by(Assignment.id)
        )
        if self._locks:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).all()

    async def open_of_seller(self, seller_id: str, *, limit: int) -> Sequence[Assignment]:
        """The seller's open offers and assignments, in the order they were offered."""
        return (
            await self.session.scalars(
                select(Assignment)
                .where(Assignment.seller_id == seller_id, Assignment.is_open.is_(True))
                .order_by(Assignment.offered_at, Assignment.id)
                .limit(limit)
            )
        ).all()

    async def leads(self, lead_ids: Sequence[str]) -> dict[str, DispatchLead]:
        if not lead_ids:
            return {}
        rows = await self.session.scalars(
            select(DispatchLead).where(DispatchLead.lead_id.in_(list(lead_ids)))
        )
        return {lead.lead_id: lead for lead in rows}

    async def assignments_of_lead(self, lead_id: str) -> Sequence[Assignment]:
        """Every assignment of the lead, open or ended, in the order they were offered."""
        return (
            await self.session.scalars(
                select(Assignment)
                .where(Assignment.lead_id == lead_id)
                .order_by(Assignment.offered_at, Assignment.id)
            )
        ).all()

    async def open_assignments(self, lead_id: str) -> Sequence[Assignment]:
        """The lead's open offers and assignments (those counting in a seller's load), in the
        order they were offered."""
        return (
            await self.session.scalars(
                select(Assignment)
                .where(Assignment.lead_id == lead_id, Assignment.is_open.is_(True))
                .order_by(Assignment.offered_at, Assignment.id)
            )
        ).all()

    async def last_with_progress(self, lead_id: str) -> Assignment | None:
        """The lead's latest assignment that reached the prospect or set an appointment."""
        return await self.session.scalar(
            select(Assignment)
            .where(
                Assignment.lead_id == lead_id,
                or_(Assignment.contacted_at.is_not(None), Assignment.appointment_at.is_not(None)),
            )
            .order_by(Assignment.offered_at.desc(), Assignment.id.desc())
            .limit(1)
        )

    async def sellers_out_of_round(self, lead_id: str, since: datetime) -> frozenset[str]:
        """Sellers not to offer the lead again in the round that began at ``since``: those
        offered it since, and those who gave it back or had it taken away since."""
        rows = await self.session.scalars(
            select(Assignment.seller_id).where(
                Assignment.lead_id == lead_id,
                or_(
                    Assignment.offered_at >= since,
                    and_(
                        Assignment.ended_at >= since,
                        or_(
                            Assignment.status == HANDED_BACK,
                            Assignment.end_reason == REASSIGNED_REASON,
                        ),
                    ),
                ),
            )
        )
        return frozenset(rows.all())

    async def deadlines_due_by(
        self, horizon: datetime, *, site_id: str | None = None
    ) -> Sequence[Assignment]:
        """Open offers to accept, and accepted leads to contact, by ``horizon``."""
        query = select(Assignment).where(
            Assignment.is_open.is_(True),
            or_(
                and_(Assignment.status == OFFERED, Assignment.accept_due_at <= horizon),
                and_(Assignment.status == ACCEPTED, Assignment.first_contact_due_at <= horizon),
            ),
        )
        if site_id is not None:
            query = query.where(Assignment.site_id == site_id)
        return (await self.session.scalars(query)).all()

    # -- appointments ---------------------------------------------------------------------

    def add_appointment(self, appointment: Appointment) -> None:
        self.session.add(appointment)

    async def current_appointment(self, lead_id: str) -> Appointment | None:
        """The lead's scheduled appointment (the latest set), if any."""
        return await self.session.scalar(
            select(Appointment)
            .where(Appointment.lead_id == lead_id, Appointment.status == SCHEDULED)
            .order_by(Appointment.set_at.desc(), Appointment.id.desc())
            .limit(1)
        )

    async def appointments_of_lead(self, lead_id: str) -> Sequence[Appointment]:
        """The lead's appointments, in the order they were set (the history; of two set at the
        same instant, the one already ended first)."""
        return (
            await self.session.scalars(
                select(Appointment)
                .where(Appointment.lead_id == lead_id)
                .order_by(
                    Appointment.set_at,
                    Appointment.ended_at.is_(None),
                    Appointment.ended_at,
                    Appointment.id,
                )
            )
        ).all()

    # -- sellers' load ---------------------------------------------------------------------

    async def seller(self, seller_id: str) -> Seller | None:
        return await self.session.get(Seller, seller_id)

    async def count_offer(self, seller: Seller, now: datetime) -> None:
        """One more open offer in the seller's load, offered at ``now`` (one prebuilt UPDATE).
        The session's seller keeps ``last_offered_at`` and forgets its load, as after a flush
        of an increment: it is read afresh when asked."""
        with self.session.no_autoflush:  # the step's pending changes go with its next flush
            await self.session.execute(_SELLER_OFFERED, {"seller_id": seller.id, "now": now})
        set_committed_value(seller, "last_offered_at", now)
        self.session.expire(seller, ["open_count"])
        pool_offered(self.session, seller.id, now)

    async def write_new_lead_offer(self, offer: NewLeadOffer, now: datetime) -> None:
        """Write a lead recorded in this step with its first offer (``NewLeadOffer``), then keep
        the lead and the assignment in the session as if read (their later changes are flushed
        as UPDATEs) and its seller with ``count_offer``'s state; the outbox's relay is woken
        once committed. PostgreSQL: one statement; SQLite: one statement per table."""
        if not self._locks:
            await self.insert_lead(offer.lead)
            await PrivacyRepository(self.session).add_contact_keys(
                offer.lead.lead_id, offer.contact_keys
            )
            await self.insert(offer.assignment)
            await self.count_offer(offer.seller, now)
            await TimerRepository(self.session).insert(offer.timer)
            await WebhookRepository(self.session).insert_delivery(offer.message)
            with self.session.no_autoflush:
                await self.session.execute(insert_into(offer.outbox), offer.event)
            wake_after_commit(self.session, offer.outbox.name)
            return
        lead, assignment = offer.lead, offer.assignment
        prepared, plan = _new_lead_offer_prepared(offer.outbox, self.session.get_bind().dialect)
        sources: tuple[Any, ...] = (
            {"seller_id": offer.seller.id, "now": now, "contact_keys": list(offer.contact_keys)},
            offer.timer,
            offer.message,
            offer.event,
            prepared.constants,
        )
        objects = {-2: lead, -1: assignment}
        values = [
            sources[source][key] if source >= 0 else getattr(objects[source], key)
            for source, key in plan
        ]
        await prepared.execute(self.session, prepared.arguments(values))
        wake_after_commit(self.session, offer.outbox.name)
        for row in (lead, assignment):
            make_transient_to_detached(row)
            self.session.add(row)
        set_committed_value(offer.seller, "last_offered_at", now)
        self.session.expire(offer.seller, ["open_count"])
        pool_offered(self.session, offer.seller.id, now)

    async def release_slot(self, seller: Seller) -> None:
        """One open offer or assignment fewer in the seller's load (one prebuilt UPDATE); the
        session's seller forgets its load, read afresh when asked."""
        with self.session.no_autoflush:  # the step's pending changes go with its next flush
            await self.session.execute(_SELLER_RELEASED, {"seller_id": seller.id})
        self.session.expire(seller, ["open_count"])
        pool_released(self.session)

    async def flush(self) -> None:
        await self.session.flush()
