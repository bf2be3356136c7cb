"""Bodies of the call-backs and of the managers' views (ids, states, times; no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from dispatch.assignments.state import AppointmentStatus, AssignmentStatus, LeadStatus
from dispatch.directory.schemas import Absence, SellerMode
from shared.events.payloads import ContactChannel, DeclineReason, HandBackReason, LostReason
from shared.instants import Instant

Deadline = Literal["accept", "first_contact"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeclineIn(_In):
    reason: DeclineReason


class ContactedIn(_In):
    channel: ContactChannel


class AppointmentIn(_In):
    appointment_at: Instant
    site_id: str | None = Field(default=None, max_length=64)


class LostIn(_In):
    reason: LostReason


class SoldIn(_In):
    price_eur: StrictInt | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Sale price in whole euros, taxes included (optional).",
    )


class HandBackIn(_In):
    reason: HandBackReason


# -- managers' moves ---------------------------------------------------------------------

ChosenMode = Literal["offer", "direct"]


class _MoveIn(_In):
    mode: ChosenMode = Field(
        default="offer",
        description=(
            "offer: the seller is offered the lead and accepts it (or declines); direct: the "
            "seller holds it at once (no accept step, no accept time charged)."
        ),
    )
    allow_over_capacity: StrictBool = Field(
        default=False, description="Go beyond the chosen seller's capacity (else 409)."
    )


class AssignIn(_MoveIn):
    seller_id: str = Field(max_length=36)


class ReassignIn(_MoveIn):
    seller_id: str | None = Field(
        default=None, max_length=36, description="The new seller; null: back to routing."
    )


class ReassignAllIn(ReassignIn):
    absence: Absence | None = Field(
        default=None,
        description="Also record this absence of the seller (routing skips them meanwhile).",
    )


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str
    seller_id: str
    site_id: str | None
    status: AssignmentStatus
    strategy: str
    offered_at: datetime
    accept_due_at: datetime
    accepted_at: datetime | None
    first_contact_due_at: datetime | None
    contacted_at: datetime | None
    appointment_at: datetime | None
    followups_sent: int
    ended_at: datetime | None
    end_reason: str | None
    previous_assignment_id: str | None = Field(
        default=None, description="The assignment this one took over from (its progress)."
    )
    assigned_by: str | None = Field(
        default=None, description="Token id of the manager who made it by hand."
    )
    sale_price_eur: int | None = None


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    assignment_id: str
    seller_id: str
    site_id: str | None
    appointment_at: datetime
    status: AppointmentStatus
    set_at: datetime
    ended_at: datetime | None


class LeadState(BaseModel):
    """A lead as managers see it: ids, states and deadlines (no contact details)."""

    model_config = ConfigDict(from_attributes=True)

    lead_id: str
    source: str
    channel: str
    site_id: str | None
    routed_to: SellerMode | None
    status: LeadStatus
    seller_id: str | None
    escalated_at: datetime | None
    escalation_reason: str | None
    qualified_at: datetime


class BoardItem(BaseModel):
    lead_id: str
    assignment_id: str | None
    seller_id: str | None
    site_id: str | None
    status: AssignmentStatus
    deadline: Deadline | None = Field(description="accept or first_contact")
    due_at: datetime | None


class SiteBoard(BaseModel):
    site_id: str | None = Field(description="None: the full-web pool")
    unassigned: list[LeadState]
    at_risk: list[BoardItem]
    breached: list[BoardItem]


class Board(BaseModel):
    generated_at: datetime
    at_risk_minutes: int
    sites: list[SiteBoard]


class VehicleSoldOut(BaseModel):
    ad_ref: str
    closed_leads: int


class MovedOut(BaseModel):
    """One lead a manager moved: the assignment taken away and the new one (None: routing
    found nobody, the lead is escalated)."""

    lead_id: str
    lead_status: LeadStatus
    previous_assignment_id: str | None
    previous_seller_id: str | None
    assignment: AssignmentOut | None


class ReassignedAllOut(BaseModel):
    seller_id: str
    absence_recorded: bool
    moved: list[MovedOut]
