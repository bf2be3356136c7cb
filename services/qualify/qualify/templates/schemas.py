"""Bodies of the template API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qualify.messages.state import TemplateKind
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource, MessageChannel
from shared.messaging.sms_text import SmsEncoding

SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateContentIn(Strict):
    """What a template says. E-mail: ``subject`` and ``text`` (``html`` optional: made from the
    text otherwise). SMS: ``text`` only (the opt-out line is added)."""

    subject: str | None = Field(default=None, min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=10_000)
    html: str | None = Field(default=None, min_length=1, max_length=100_000)

    def require_channel_fields(self, channel: MessageChannel) -> None:
        errors = []
        if channel == "email" and self.subject is None:
            errors.append(("subject", "missing", "required for an e-mail template"))
        if channel == "sms":
            errors += [
                (name, "extra_forbidden", "not used by an SMS template")
                for name in ("subject", "html")
                if getattr(self, name) is not None
            ]
        if errors:
            raise InvalidRequest(
                "Invalid or missing fields: " + ", ".join(name for name, _, _ in errors),
                errors=[
                    {"field": name, "location": "body", "type": kind, "message": message}
                    for name, kind, message in errors
                ],
            )


class TemplateIn(TemplateContentIn):
    kind: TemplateKind
    channel: MessageChannel
    site: str | None = Field(default=None, pattern=SITE_PATTERN, description="None: every site.")
    source: LeadSource | None = Field(default=None, description="None: every source.")

    @model_validator(mode="after")
    def fields_of_channel(self) -> TemplateIn:
        self.require_channel_fields(self.channel)
        return self


class TemplateOut(BaseModel):
    id: str
    kind: TemplateKind
    channel: MessageChannel
    site: str | None
    source: LeadSource | None
    subject: str | None
    text: str
    html: str | None
    created_at: datetime
    updated_at: datetime
    updated_by: str


class DefaultTemplateOut(BaseModel):
    kind: TemplateKind
    channel: MessageChannel
    subject: str | None
    text: str
    html: str | None


class TemplateCatalogue(BaseModel):
    defaults: list[DefaultTemplateOut]
    variables: dict[str, str] = Field(description="Every variable and what it says.")
    operator_only: list[str] = Field(description="Variables only operator replies may use.")


class PreviewIn(Strict):
    kind: TemplateKind
    channel: MessageChannel
    site: str | None = Field(default=None, pattern=SITE_PATTERN)
    source: LeadSource | None = None
    lead_id: str | None = Field(
        default=None,
        max_length=36,
        description="Render for this lead (its site and source unless given); else a sample.",
    )
    content: TemplateContentIn | None = Field(
        default=None, description="Try this unsaved content instead of the stored template."
    )
    text: str | None = Field(
        default=None, max_length=4000, description="The operator's text ({{text}})."
    )
    sender_name: str | None = Field(default=None, max_length=120)

    @model_validator(mode="after")
    def content_of_channel(self) -> PreviewIn:
        if self.content is not None:
            self.content.require_channel_fields(self.channel)
        return self


class EmailPreview(BaseModel):
    subject: str
    text: str
    html: str
    list_unsubscribe: str = Field(description="The List-Unsubscribe header the e-mail carries.")


class SmsPreview(BaseModel):
    text: str = Field(description="As sent: the opt-out line included.")
    encoding: SmsEncoding
    segments: int
    truncated: bool = Field(description="The text was cut to fit the segment budget.")


class PreviewOut(BaseModel):
    kind: TemplateKind
    channel: MessageChannel
    template_id: str | None = Field(description="None: the built-in default (or given content).")
    scope: Literal["default", "all_leads", "source", "site", "site_and_source", "given"]
    sample: bool = Field(description="Rendered for a sample lead (no lead_id).")
    variables: dict[str, str]
    email: EmailPreview | None = None
    sms: SmsPreview | None = None
