"""Bodies of the call-backs and of the managers' views (ids, states, times; no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dispatch.assignments.state import AssignmentStatus, LeadStatus
from dispatch.directory.schemas import SellerMode
from shared.events.payloads import ContactChannel, DeclineReason, LostReason

Deadline = Literal["accept", "first_contact"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeclineIn(_In):
    reason: DeclineReason


class ContactedIn(_In):
    channel: ContactChannel


class AppointmentIn(_In):
    appointment_at: AwareDatetime
    site_id: str | None = Field(default=None, max_length=64)


class LostIn(_In):
    reason: LostReason


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
