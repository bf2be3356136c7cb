"""One step of an assignment's life (a consumed event, a call-back, a fired timer, a manager's
action) and the moves every step shares.

A step works in the caller's unit of work: state, timers, webhook messages and events are
committed together or not at all. Everything in it happens at one instant, ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.repository import AssignmentRepository
from dispatch.assignments.state import AssignmentStatus
from dispatch.directory.calendars import in_legal_window
from dispatch.directory.repository import DirectoryRepository, Schedule
from dispatch.models import Assignment, DispatchLead, Seller, VehicleStock
from dispatch.settings import DispatchSettings
from dispatch.timers.repository import TimerRepository
from dispatch.webhooks.handoff import WebhookHandoff
from dispatch.webhooks.service import QueuedWebhook, queue_webhook, webhook_message
from shared.contact_rules import CallingRules, rules_for_phone
from shared.events.payloads import EventPayload
from shared.outbox import Outbox


@dataclass(frozen=True)
class SellerMessage:
    """A webhook for a seller's tool (``assignment.offered``, ``assignment.withdrawn``…)."""

    seller: Seller
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Step:
    session: AsyncSession
    settings: DispatchSettings
    outbox: Outbox
    now: datetime
    # The worker's own webhook sender, when the step runs in the worker: its messages are
    # claimed at birth for it (``dispatch.webhooks.handoff``).
    handoff: WebhookHandoff | None = None

    @cached_property
    def assignments(self) -> AssignmentRepository:
        return AssignmentRepository(self.session)

    @cached_property
    def timers(self) -> TimerRepository:
        return TimerRepository(self.session)

    @cached_property
    def directory(self) -> DirectoryRepository:
        return DirectoryRepository(self.session)

    @cached_property
    def _vehicles(self) -> dict[str, VehicleStock | None]:
        return {}

    @cached_property
    def _schedules(self) -> dict[tuple[str, str | None], Schedule]:
        return {}

    def known_vehicle(self, ad_ref: str, vehicle: VehicleStock | None) -> None:
        """The vehicle's stock row, read already by another statement of this step."""
        self._vehicles[ad_ref] = vehicle

    def known_schedule(self, source: str, site_id: str | None, schedule: Schedule) -> None:
        """The contact schedule of a source at a site, read already by this step."""
        self._schedules[(source, site_id)] = schedule

    # -- the shared moves ------------------------------------------------------------------

    async def announce(
        self,
        lead_id: str,
        event_type: str,
        event: EventPayload,
        message: SellerMessage | None = None,
    ) -> None:
        """Queue the message to the seller's tool (when there is one), then stage the event."""
        if message is not None:
            await self.tell(lead_id, message)
        await self.outbox.stage(self.session, event_type, lead_id, event)

    async def tell(self, lead_id: str | None, message: SellerMessage) -> None:
        """Queue a message to the seller's tool (kept as ``held`` when it has no usable
        endpoint: the seller's feed still shows it)."""
        await queue_webhook(
            self.session,
            message.seller,
            message.event_type,
            message.data,
            now=self.now,
            lead_id=lead_id,
            handoff=self.handoff,
        )

    def message(self, lead_id: str | None, message: SellerMessage) -> QueuedWebhook:
        """A message to the seller's tool, to write with the step's own statement (``tell``
        writes one at once)."""
        return webhook_message(
            message.seller,
            message.event_type,
            message.data,
            now=self.now,
            lead_id=lead_id,
            handoff=self.handoff,
        )

    async def end(
        self,
        assignment: Assignment,
        seller: Seller,
        *,
        status: AssignmentStatus,
        reason: str,
        event_type: str,
        event: EventPayload,
        message: SellerMessage | None = None,
    ) -> None:
        """End an assignment: release the seller's slot → queue the webhook → publish the
        event. Every way an assignment ends (declined, expired, withdrawn, sold, lost) is this."""
        assignment.status = status
        assignment.end_reason = reason
        assignment.ended_at = self.now
        if assignment.is_open:
            assignment.is_open = False
            await self.assignments.flush()  # the assignment, then the seller's load
            await self.assignments.release_slot(seller)
        await self.announce(assignment.lead_id, event_type, event, message)

    # -- reads every step needs ------------------------------------------------------------

    async def lead(self, lead_id: str) -> DispatchLead:
        """A lead known to exist (an assignment or a timer points to it)."""
        lead = await self.assignments.lead(lead_id)
        assert lead is not None
        return lead

    async def seller(self, seller_id: str) -> Seller:
        """A seller known to exist (an assignment points to it)."""
        seller = await self.assignments.seller(seller_id)
        assert seller is not None
        return seller

    async def vehicle(self, ad_ref: str | None) -> VehicleStock | None:
        """The vehicle's stock row, read once a step (intake asks whether it is sold, routing
        where it stands and its make; a row that is not there would be asked for each time)."""
        if ad_ref is None:
            return None
        if ad_ref not in self._vehicles:
            self._vehicles[ad_ref] = await self.directory.vehicle(ad_ref)
        return self._vehicles[ad_ref]

    async def schedule(self, lead: DispatchLead, site_id: str | None) -> Schedule:
        """The contact schedule of the lead at this site (the lead's own site by default).
        Read without flushing the step's pending changes first: no step writes schedules or
        sites, and the lead's changes are then written by the step's next flush, in one
        UPDATE."""
        key = (lead.source, site_id or lead.site_id)
        known = self._schedules.get(key)
        if known is not None:
            return known
        with self.session.no_autoflush:
            return await self.directory.schedule_for(self.settings, source=key[0], site_id=key[1])

    def calling_rules(self, lead: DispatchLead) -> CallingRules:
        """The legal calling rules of the settings, in the consumer's own zone (overseas
        numbers get their time zone and holidays)."""
        contact = lead.qualification.get("contact") or {}
        phone = contact.get("phone") if isinstance(contact, dict) else None
        return rules_for_phone(self.settings.calling_rules(), phone)

    def in_legal_window(self, moment: datetime, lead: DispatchLead) -> datetime:
        """``moment``, or the next instant a seller may call the lead's prospect."""
        return in_legal_window(moment, self.calling_rules(lead))

    def url(self, path: str) -> str:
        """An absolute URL of this API, as sellers' tools must call it."""
        return f"{self.settings.public_base_url.rstrip('/')}{path}"
