"""SQL of leads to route and their assignments (offers, the sellers' work on them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select

from dispatch.assignments.state import (
    ACCEPTED,
    LEAD_UNASSIGNED,
    OFFERED,
    OPEN_LEAD_STATUSES,
)
from dispatch.models import Assignment, DispatchLead, Seller
from shared.db.repository import Repository


class AssignmentRepository(Repository):
    # -- leads ----------------------------------------------------------------------------

    async def lead(self, lead_id: str) -> DispatchLead | None:
        return await self.session.get(DispatchLead, lead_id)

    async def add_lead(self, lead: DispatchLead) -> None:
        self.session.add(lead)
        await self.session.flush()

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

    def add(self, assignment: Assignment) -> None:
        """A new assignment, written with the next flush."""
        self.session.add(assignment)

    async def locked(self, assignment_id: str) -> Assignment | None:
        """The assignment, locked for this transaction on PostgreSQL (concurrent call-backs and
        timers on it wait for each other)."""
        query = select(Assignment).where(Assignment.id == assignment_id)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return await self.session.scalar(query)

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

    async def sellers_offered_since(self, lead_id: str, since: datetime) -> frozenset[str]:
        rows = await self.session.scalars(
            select(Assignment.seller_id).where(
                Assignment.lead_id == lead_id, Assignment.offered_at >= since
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

    # -- sellers' load ---------------------------------------------------------------------

    async def seller(self, seller_id: str) -> Seller | None:
        return await self.session.get(Seller, seller_id)

    async def flush(self) -> None:
        await self.session.flush()
