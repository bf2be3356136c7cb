"""The assignment life cycle: offer → accept / decline / expiry → escalation, then contact,
appointment, sale or loss, with the durable timers of the contact schedule.

Every method works in the caller's unit of work (request, consumed event or fired timer): state,
timers, webhook messages and events are committed together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.calendars import in_legal_window
from dispatch.directory.repository import DirectoryRepository, Schedule
from dispatch.events import publish
from dispatch.models import (
    Assignment,
    DispatchLead,
    LeadContactKey,
    Seller,
    Timer,
    VehicleStock,
)
from dispatch.privacy import contact_hashes, is_suppressed
from dispatch.routing.engine import Decision, Target, decide, target_for
from dispatch.routing.strategy import strategy_named
from dispatch.settings import DispatchSettings
from dispatch.timers.repository import (
    ACCEPT_DEADLINE,
    FIRST_CONTACT,
    FOLLOWUP,
    REROUTE,
    TimerRepository,
)
from dispatch.webhooks.service import ESCALATED, FOLLOWUP_DUE, OFFERED, WITHDRAWN, queue_webhook
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.events.payloads import (
    AssignmentAcceptedV1,
    AssignmentDeclinedV1,
    AssignmentEndedV1,
    AssignmentOfferedV1,
    ContactChannel,
    DeclineReason,
    EscalationReason,
    LeadAppointmentSetV1,
    LeadAssignedV1,
    LeadContactedV1,
    LeadEscalatedV1,
    LeadFollowupDueV1,
    LeadLostV1,
    LeadQualifiedV1,
    LeadWonV1,
    LostReason,
)

log = structlog.get_logger(__name__)

OPEN_LEAD_STATUSES = ("unassigned", "offered", "assigned")
WORKING = ("accepted", "contacted", "appointment")
# Which call-back may move an assignment from which status.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "accept": ("offered",),
    "decline": ("offered",),
    "contacted": ("accepted", "contacted"),
    "appointment": ("accepted", "contacted", "appointment"),
    "sold": WORKING,
    "lost": WORKING,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IllegalTransition(Conflict):
    """The assignment's status does not allow this call-back."""

    slug, title = "illegal-transition", "Illegal transition"


@dataclass
class DispatchService:
    session: AsyncSession
    settings: DispatchSettings
    now: datetime

    @property
    def timers(self) -> TimerRepository:
        return TimerRepository.from_session(self.session)

    @property
    def directory(self) -> DirectoryRepository:
        return DirectoryRepository.from_session(self.session)

    # -- intake ---------------------------------------------------------------------------

    async def on_qualified(self, payload: LeadQualifiedV1) -> DispatchLead:
        """Record a qualified lead and route it (idempotent on the lead id)."""
        existing = await self.session.get(DispatchLead, payload.lead_id)
        if existing is not None:
            return existing
        phone_consent = payload.consents.get("phone")
        lead = DispatchLead(
            lead_id=payload.lead_id,
            source=payload.source,
            channel=payload.channel,
            site_id=payload.site,
            vehicle_ad_ref=payload.vehicle_ad_ref,
            language=payload.language[:8],
            financing_wanted=payload.financing_wanted,
            do_not_contact=phone_consent is not None and not phone_consent.granted,
            followups_blocked=False,
            qualification=payload.model_dump(mode="json"),
            status="unassigned",
            seller_id=None,
            routed_to=None,
            escalated_at=None,
            escalation_reason=None,
            close_reason=None,
            received_at=payload.received_at,
            qualified_at=payload.qualified_at,
            updated_at=self.now,
        )
        self.session.add(lead)
        await self.session.flush()
        hashes = contact_hashes(
            payload.contact, self.settings.privacy_hmac_key.get_secret_value().encode()
        )
        for digest in hashes:
            self.session.add(LeadContactKey(lead_id=lead.lead_id, contact_hash=digest))
        lead.followups_blocked = await is_suppressed(self.session, hashes)
        if lead.do_not_contact:
            await self._close(lead, "do_not_contact")
            return lead
        if await self._vehicle_sold(lead.vehicle_ad_ref):
            await self._close(lead, "vehicle_sold")
            return lead
        await self.route(lead)
        return lead

    async def _vehicle_sold(self, ad_ref: str | None) -> bool:
        if ad_ref is None:
            return False
        stock = await self.session.get(VehicleStock, ad_ref)
        return stock is not None and stock.sold_at is not None

    # -- routing --------------------------------------------------------------------------

    async def route(self, lead: DispatchLead) -> Assignment | None:
        """Offer the lead to the next eligible seller, or escalate it (never parked silently)."""
        if lead.status not in ("unassigned", "offered") or lead.do_not_contact:
            return None
        excluded = await self._tried_this_round(lead)
        decision = await decide(
            self.session,
            lead,
            settings=self.settings,
            strategy=strategy_named(self.settings.routing_strategy),
            now=self.now,
            excluded=excluded,
        )
        lead.routed_to = decision.target.pool
        if decision.seller is None:
            await self._escalate_unassigned(lead, decision.target)
            return None
        return await self._offer(lead, decision)

    async def _tried_this_round(self, lead: DispatchLead) -> frozenset[str]:
        """Sellers offered this lead since its last escalation: not offered again this round."""
        since = lead.escalated_at or _EPOCH
        rows = await self.session.scalars(
            select(Assignment.seller_id).where(
                Assignment.lead_id == lead.lead_id, Assignment.offered_at >= since
            )
        )
        return frozenset(rows.all())

    async def _offer(self, lead: DispatchLead, decision: Decision) -> Assignment:
        seller = decision.seller
        assert seller is not None
        target = decision.target
        schedule = await self._schedule(lead, target.site_id)
        accept_due = target.calendar.add_business_minutes(self.now, schedule.accept_within_minutes)
        assignment = Assignment(
            id=str(uuid.uuid4()),
            lead_id=lead.lead_id,
            seller_id=seller.id,
            site_id=target.site_id,
            status="offered",
            is_open=True,
            strategy=decision.strategy,
            offered_at=self.now,
            accept_due_at=accept_due,
            accepted_at=None,
            first_contact_due_at=None,
            contacted_at=None,
            contact_channel=None,
            appointment_at=None,
            followups_sent=0,
            ended_at=None,
            end_reason=None,
        )
        self.session.add(assignment)
        seller.open_count = Seller.open_count + 1
        seller.last_offered_at = self.now
        lead.status = "offered"
        lead.updated_at = self.now
        await self.session.flush()
        await self.timers.schedule(
            ACCEPT_DEADLINE,
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            due_at=accept_due,
            now=self.now,
        )
        await queue_webhook(
            self.session,
            seller,
            OFFERED,
            self._offer_data(lead, assignment),
            now=self.now,
            lead_id=lead.lead_id,
        )
        await publish(
            self.session,
            "assignment.offered.v1",
            lead.lead_id,
            AssignmentOfferedV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=seller.id,
                site_id=target.site_id,
                offered_at=self.now,
                accept_due_at=accept_due,
                strategy=decision.strategy,
            ),
        )
        log.info(
            "dispatch.offered",
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            seller_id=seller.id,
            pool=target.pool,
            reason=target.reason,
        )
        return assignment

    def callback_urls(self, assignment_id: str) -> dict[str, str]:
        base = self.settings.public_base_url.rstrip("/")
        return {action: f"{base}/v1/assignments/{assignment_id}/{action}" for action in TRANSITIONS}

    def _offer_data(self, lead: DispatchLead, assignment: Assignment) -> dict[str, Any]:
        return {
            "lead": lead.qualification,
            "assignment": {
                "id": assignment.id,
                "status": assignment.status,
                "site_id": assignment.site_id,
                "offered_at": assignment.offered_at.isoformat(),
            },
            "deadlines": {"accept_by": assignment.accept_due_at.isoformat()},
            "callbacks": self.callback_urls(assignment.id),
        }

    async def _schedule(self, lead: DispatchLead, site_id: str | None) -> Schedule:
        return await self.directory.schedule_for(
            self.settings, source=lead.source, site_id=site_id or lead.site_id
        )

    async def _escalate_unassigned(self, lead: DispatchLead, target: Target) -> None:
        newly = lead.status != "unassigned" or lead.escalated_at is None
        lead.status = "unassigned"
        lead.seller_id = None
        lead.escalated_at = self.now
        lead.escalation_reason = "no_seller_available"
        lead.updated_at = self.now
        await self.timers.cancel(now=self.now, lead_id=lead.lead_id, kinds=(REROUTE,))
        # Retry when the pool may have someone: after a delay in the pool's business time.
        retry_at = target.calendar.add_business_minutes(
            self.now, self.settings.reroute_after_minutes
        )
        await self.timers.schedule(REROUTE, lead_id=lead.lead_id, due_at=retry_at, now=self.now)
        if newly:
            await self._escalate(lead, "no_seller_available", target.site_id, None)

    async def _escalate(
        self,
        lead: DispatchLead,
        reason: EscalationReason,
        site_id: str | None,
        assignment_id: str | None,
    ) -> None:
        schedule = await self._schedule(lead, site_id)
        target_id = schedule.escalation_seller_id
        manager = await self.directory.seller(target_id) if target_id else None
        if manager is not None:
            await queue_webhook(
                self.session,
                manager,
                ESCALATED,
                {
                    "lead_id": lead.lead_id,
                    "reason": reason,
                    "site_id": site_id,
                    "assignment_id": assignment_id,
                    "board_url": f"{self.settings.public_base_url.rstrip('/')}/v1/board",
                },
                now=self.now,
                lead_id=lead.lead_id,
            )
        await publish(
            self.session,
            "lead.escalated.v1",
            lead.lead_id,
            LeadEscalatedV1(
                lead_id=lead.lead_id,
                reason=reason,
                site_id=site_id,
                assignment_id=assignment_id,
                escalation_target=manager.id if manager else None,
                escalated_at=self.now,
            ),
        )
        log.info("dispatch.escalated", lead_id=lead.lead_id, reason=reason)

    # -- call-backs -----------------------------------------------------------------------

    async def assignment_for(self, assignment_id: str, seller: Seller | None) -> Assignment:
        """The assignment, locked; a seller may only act on their own (None = admin)."""
        query = select(Assignment).where(Assignment.id == assignment_id)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        assignment = await self.session.scalar(query)
        if assignment is None:
            raise NotFound("No assignment has this id.")
        if seller is not None and assignment.seller_id != seller.id:
            raise Forbidden("This assignment belongs to another seller.")
        return assignment

    def _check(self, assignment: Assignment, action: str) -> None:
        if assignment.status not in TRANSITIONS[action]:
            raise IllegalTransition(
                f"Cannot {action} an assignment in status {assignment.status}.",
                status_now=assignment.status,
                allowed_from=list(TRANSITIONS[action]),
            )

    async def _lead(self, lead_id: str) -> DispatchLead:
        lead = await self.session.get(DispatchLead, lead_id)
        assert lead is not None
        return lead

    async def _seller(self, seller_id: str) -> Seller:
        seller = await self.session.get(Seller, seller_id)
        assert seller is not None
        return seller

    async def _release(
        self, assignment: Assignment, seller: Seller, status: str, reason: str
    ) -> None:
        assignment.status = status
        assignment.end_reason = reason
        assignment.ended_at = self.now
        if assignment.is_open:
            assignment.is_open = False
            # An atomic decrement in SQL (concurrent call-backs of other leads of the seller).
            seller.open_count = Seller.open_count - 1
            await self.session.flush()

    async def accept(self, assignment: Assignment) -> Assignment:
        self._check(assignment, "accept")
        if self.now > assignment.accept_due_at:
            raise IllegalTransition("The offer's accept deadline has passed.")
        lead = await self._lead(assignment.lead_id)
        schedule = await self._schedule(lead, assignment.site_id)
        target = await target_for(self.session, lead, self.settings, self.now)
        due = in_legal_window(
            target.calendar.add_business_minutes(self.now, schedule.first_contact_within_minutes)
        )
        assignment.status = "accepted"
        assignment.accepted_at = self.now
        assignment.first_contact_due_at = due
        lead.status = "assigned"
        lead.seller_id = assignment.seller_id
        lead.updated_at = self.now
        await self.timers.cancel(now=self.now, assignment_id=assignment.id)
        await self.timers.cancel(now=self.now, lead_id=lead.lead_id, kinds=(REROUTE,))
        await self.timers.schedule(
            FIRST_CONTACT,
            lead_id=lead.lead_id,
            assignment_id=assignment.id,
            due_at=due,
            now=self.now,
        )
        await publish(
            self.session,
            "assignment.accepted.v1",
            lead.lead_id,
            AssignmentAcceptedV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                accepted_at=self.now,
                first_contact_due_at=due,
            ),
        )
        await publish(
            self.session,
            "lead.assigned.v1",
            lead.lead_id,
            LeadAssignedV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                site_id=assignment.site_id,
                assigned_at=self.now,
            ),
        )
        return assignment

    async def decline(self, assignment: Assignment, reason: DeclineReason) -> Assignment:
        self._check(assignment, "decline")
        seller = await self._seller(assignment.seller_id)
        await self._release(assignment, seller, "declined", reason)
        await self.timers.cancel(now=self.now, assignment_id=assignment.id)
        await publish(
            self.session,
            "assignment.declined.v1",
            assignment.lead_id,
            AssignmentDeclinedV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                declined_at=self.now,
                reason=reason,
            ),
        )
        await self.session.flush()
        await self.route(await self._lead(assignment.lead_id))
        return assignment

    async def contacted(self, assignment: Assignment, channel: ContactChannel) -> Assignment:
        self._check(assignment, "contacted")
        first = assignment.contacted_at is None
        assignment.status = "contacted"
        assignment.contacted_at = assignment.contacted_at or self.now
        assignment.contact_channel = channel
        if first:
            await self.timers.cancel(
                now=self.now, assignment_id=assignment.id, kinds=(FIRST_CONTACT,)
            )
            await self._schedule_followup(assignment)
        await publish(
            self.session,
            "lead.contacted.v1",
            assignment.lead_id,
            LeadContactedV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                channel=channel,
                contacted_at=self.now,
            ),
        )
        return assignment

    async def _schedule_followup(self, assignment: Assignment) -> Timer | None:
        """The next follow-up (J+n after the first contact), inside a legal calling window."""
        lead = await self._lead(assignment.lead_id)
        schedule = await self._schedule(lead, assignment.site_id)
        if lead.followups_blocked or assignment.followups_sent >= len(schedule.followup_days):
            return None
        assert assignment.contacted_at is not None
        day = schedule.followup_days[assignment.followups_sent]
        due = in_legal_window(assignment.contacted_at + timedelta(days=day))
        return await self.timers.schedule(
            FOLLOWUP, lead_id=lead.lead_id, assignment_id=assignment.id, due_at=due, now=self.now
        )

    async def appointment(
        self, assignment: Assignment, at: datetime, site_id: str | None
    ) -> Assignment:
        self._check(assignment, "appointment")
        if at <= self.now:
            raise InvalidRequest(
                "Invalid field: appointment_at",
                errors=[
                    {
                        "field": "appointment_at",
                        "location": "body",
                        "type": "value_error",
                        "message": "the appointment must be in the future",
                    }
                ],
            )
        if site_id is not None and await self.directory.site(site_id) is None:
            raise NotFound("No site has the site_id.")
        assignment.status = "appointment"
        assignment.appointment_at = at
        await self.timers.cancel(
            now=self.now, assignment_id=assignment.id, kinds=(FIRST_CONTACT, FOLLOWUP)
        )
        await publish(
            self.session,
            "lead.appointment-set.v1",
            assignment.lead_id,
            LeadAppointmentSetV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                appointment_at=at,
                site_id=site_id or assignment.site_id,
                set_at=self.now,
            ),
        )
        return assignment

    async def sold(self, assignment: Assignment) -> Assignment:
        self._check(assignment, "sold")
        seller = await self._seller(assignment.seller_id)
        lead = await self._lead(assignment.lead_id)
        await self._release(assignment, seller, "sold", "sold")
        lead.status = "won"
        lead.close_reason = "sold"
        lead.updated_at = self.now
        await self.timers.cancel(now=self.now, lead_id=lead.lead_id)
        await publish(
            self.session,
            "lead.won.v1",
            lead.lead_id,
            LeadWonV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                vehicle_ad_ref=lead.vehicle_ad_ref,
                won_at=self.now,
            ),
        )
        if lead.vehicle_ad_ref:
            await self.vehicle_sold(lead.vehicle_ad_ref, except_lead=lead.lead_id)
        return assignment

    async def lost(self, assignment: Assignment, reason: LostReason) -> Assignment:
        self._check(assignment, "lost")
        seller = await self._seller(assignment.seller_id)
        lead = await self._lead(assignment.lead_id)
        await self._release(assignment, seller, "lost", reason)
        lead.status = "lost"
        lead.close_reason = reason
        lead.updated_at = self.now
        await self.timers.cancel(now=self.now, lead_id=lead.lead_id)
        await publish(
            self.session,
            "lead.lost.v1",
            lead.lead_id,
            LeadLostV1(
                lead_id=lead.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                reason=reason,
                lost_at=self.now,
            ),
        )
        return assignment

    # -- closing leads from outside -------------------------------------------------------

    async def vehicle_sold(self, ad_ref: str, *, except_lead: str | None = None) -> int:
        """The vehicle is sold: close every other open lead for it (offers withdrawn)."""
        stock = await self.session.get(VehicleStock, ad_ref)
        if stock is not None and stock.sold_at is None:
            stock.sold_at = self.now
            stock.updated_at = self.now
        leads = (
            await self.session.scalars(
                select(DispatchLead).where(
                    DispatchLead.vehicle_ad_ref == ad_ref,
                    DispatchLead.status.in_(OPEN_LEAD_STATUSES),
                )
            )
        ).all()
        closed = 0
        for lead in leads:
            if lead.lead_id == except_lead:
                continue
            await self._close(lead, "vehicle_sold")
            closed += 1
        return closed

    async def do_not_contact(self, lead_id: str) -> DispatchLead:
        lead = await self.session.get(DispatchLead, lead_id)
        if lead is None:
            raise NotFound("No lead has this id.")
        lead.do_not_contact = True
        if lead.status in OPEN_LEAD_STATUSES:
            await self._close(lead, "do_not_contact")
        return lead

    async def _close(self, lead: DispatchLead, reason: LostReason) -> None:
        """Withdraw open offers and assignments of the lead and close it as lost."""
        open_ones = (
            await self.session.scalars(
                select(Assignment).where(
                    Assignment.lead_id == lead.lead_id, Assignment.is_open.is_(True)
                )
            )
        ).all()
        for assignment in open_ones:
            await self._withdraw(assignment, reason)
        lead.status = "lost"
        lead.close_reason = reason
        lead.updated_at = self.now
        await self.timers.cancel(now=self.now, lead_id=lead.lead_id)
        await publish(
            self.session,
            "lead.lost.v1",
            lead.lead_id,
            LeadLostV1(
                lead_id=lead.lead_id,
                assignment_id=open_ones[-1].id if open_ones else None,
                seller_id=open_ones[-1].seller_id if open_ones else None,
                reason=reason,
                lost_at=self.now,
            ),
        )

    async def _withdraw(self, assignment: Assignment, reason: str) -> None:
        seller = await self._seller(assignment.seller_id)
        await self._release(assignment, seller, "withdrawn", reason)
        await queue_webhook(
            self.session,
            seller,
            WITHDRAWN,
            {"lead_id": assignment.lead_id, "assignment_id": assignment.id, "reason": reason},
            now=self.now,
            lead_id=assignment.lead_id,
        )
        await publish(
            self.session,
            "assignment.withdrawn.v1",
            assignment.lead_id,
            AssignmentEndedV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                ended_at=self.now,
                reason=reason,
            ),
        )

    # -- timers ---------------------------------------------------------------------------

    async def fire(self, timer: Timer) -> str:
        """Apply one due timer; returns its outcome (for the timer row and the metrics)."""
        if timer.kind == REROUTE:
            lead = await self._lead(timer.lead_id)
            if lead.status != "unassigned":
                return "obsolete"
            assignment = await self.route(lead)
            return "offered" if assignment is not None else "still_unassigned"
        assert timer.assignment_id is not None
        assignment = await self.assignment_for(timer.assignment_id, None)
        if timer.kind == ACCEPT_DEADLINE:
            return await self._expire(assignment)
        if timer.kind == FIRST_CONTACT:
            if assignment.status != "accepted":
                return "obsolete"
            lead = await self._lead(assignment.lead_id)
            lead.escalated_at = self.now
            lead.escalation_reason = "first_contact_overdue"
            await self._escalate(lead, "first_contact_overdue", assignment.site_id, assignment.id)
            return "escalated"
        if timer.kind == FOLLOWUP:
            return await self._followup(assignment)
        return "unknown_kind"

    async def _expire(self, assignment: Assignment) -> str:
        if assignment.status != "offered":
            return "obsolete"
        seller = await self._seller(assignment.seller_id)
        await self._release(assignment, seller, "expired", "expired")
        await queue_webhook(
            self.session,
            seller,
            WITHDRAWN,
            {
                "lead_id": assignment.lead_id,
                "assignment_id": assignment.id,
                "reason": "expired",
            },
            now=self.now,
            lead_id=assignment.lead_id,
        )
        await publish(
            self.session,
            "assignment.expired.v1",
            assignment.lead_id,
            AssignmentEndedV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                ended_at=self.now,
                reason="expired",
            ),
        )
        await self.session.flush()
        await self.route(await self._lead(assignment.lead_id))
        return "expired"

    async def _followup(self, assignment: Assignment) -> str:
        if assignment.status != "contacted":
            return "obsolete"
        assignment.followups_sent += 1
        seller = await self._seller(assignment.seller_id)
        await queue_webhook(
            self.session,
            seller,
            FOLLOWUP_DUE,
            {
                "lead_id": assignment.lead_id,
                "assignment_id": assignment.id,
                "followup_number": assignment.followups_sent,
                "call_from": in_legal_window(self.now).isoformat(),
                "callbacks": self.callback_urls(assignment.id),
            },
            now=self.now,
            lead_id=assignment.lead_id,
        )
        await publish(
            self.session,
            "lead.followup-due.v1",
            assignment.lead_id,
            LeadFollowupDueV1(
                lead_id=assignment.lead_id,
                assignment_id=assignment.id,
                seller_id=assignment.seller_id,
                followup_number=assignment.followups_sent,
                due_at=self.now,
            ),
        )
        await self._schedule_followup(assignment)
        return "followup_sent"


async def open_assignments(session: AsyncSession, lead_id: str) -> Sequence[Assignment]:
    return (
        await session.scalars(
            select(Assignment)
            .where(Assignment.lead_id == lead_id)
            .order_by(Assignment.offered_at, Assignment.id)
        )
    ).all()
