"""Bodies of the clients API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TimelineEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str
    kind: str
    occurred_at: datetime
    source: str | None
    details: dict[str, Any]
    actor_names: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Names of the people and machines whose ids ``details`` holds (operator_id, "
            "reassigned_by, by…), from crm's copy of the people directory; unknown ids left out. "
            "Never stored in the timeline: a person renamed shows renamed."
        ),
    )


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    first_name: str | None
    last_name: str | None
    full_name: str | None
    phone: str | None
    email: str | None
    created_at: datetime
    last_contact_at: datetime
    timeline: list[TimelineEntryOut]
    withheld: list[Literal["contact"]] = Field(
        default_factory=list,
        description="What was left out for this caller's roles: an operator reads a client's "
        "history without its contact details (names, phone, e-mail, and the contact a lead's "
        "receipt brought).",
    )


class ClientPage(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None


class ClientSplitOut(BaseModel):
    client: ClientOut
    new_client: ClientOut


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_ids: list[str] = Field(min_length=1, max_length=500)
