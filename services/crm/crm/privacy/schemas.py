"""Bodies of the privacy API, and the values its tables hold (``Literal`` types)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

ErasureReason = Literal["data_subject_request", "retention"]
RequestStatus = Literal["in_progress", "completed"]
RetentionTrigger = Literal["manual", "daily"]
ContactKind = Literal["phone", "email"]
ObjectionReason = Literal["objection", "opt_out", "legal_request"]


class ErasureRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=36)
    reason: Literal["data_subject_request"] = "data_subject_request"


class ServiceProgress(BaseModel):
    completed_at: datetime
    erased: dict[str, int]


class ErasureRequestOut(BaseModel):
    id: str
    client_id: str
    reason: ErasureReason
    requested_at: datetime
    due_at: datetime
    completed_at: datetime | None
    status: RequestStatus
    flagged: bool = Field(description="Open and within 7 days of its legal due date.")
    overdue: bool
    lead_count: int
    services: dict[str, ServiceProgress | None]


class ErasureRequestPage(BaseModel):
    items: list[ErasureRequestOut]


class RetentionRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: StrictBool = Field(default=True, description="Count only (the default), or erase.")


class RetentionRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    trigger: RetentionTrigger
    cutoff: datetime
    clients_matched: int
    erasures_requested: int


class RetentionRunPage(BaseModel):
    items: list[RetentionRunOut]


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    reason: ObjectionReason = "objection"

    @model_validator(mode="after")
    def one_key(self) -> ObjectionIn:
        if not (self.phone or self.email):
            raise ValueError("give a phone or an e-mail")
        return self


class ObjectionOut(BaseModel):
    suppressed: bool
    reason: ObjectionReason | None = None
    since: datetime | None = None


class ExportProgress(BaseModel):
    request_id: str
    client_id: str
    requested_at: datetime
    status: RequestStatus
    services: dict[str, bool]


class RectificationIn(BaseModel):
    """Art. 16: the corrected contact details of a client. Only the fields sent change; ``null``
    removes a value. Phone in any format (French by default), stored E.164; e-mail validated and
    case-folded. A name part changes the full name with it (unless ``full_name`` is sent)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str | None = Field(default=None, min_length=1, max_length=100)
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=1, max_length=40)
    email: str | None = Field(default=None, min_length=1, max_length=254)

    @model_validator(mode="after")
    def _names_a_field(self) -> RectificationIn:
        if not self.model_fields_set:
            raise ValueError("name at least one field to correct")
        return self
