"""Qualify settings (env prefix ``QUALIFY_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from qualify.messages.settings import MessagingSettings
from shared.events.payloads import RoutingPath, SalesChannel
from shared.messaging.settings import LeadTokenSettings, OvhSmsSettings, SmtpSettings
from shared.settings import CallCentreSettings, CallingRulesSettings, ServiceSettings

# The intents a machine qualification may carry (the others need what only a person asks).
DirectIntent = Literal["buy", "info"]


class QualifySettings(
    CallingRulesSettings,
    CallCentreSettings,
    ServiceSettings,
    MessagingSettings,
    SmtpSettings,
    LeadTokenSettings,
    OvhSmsSettings,
):
    """The legal calling rules come from ``CallingRulesSettings``: unprefixed ``CALLING_*``
    variables, the same configuration dispatch reads; the call centre's hours from
    ``CallCentreSettings`` (unprefixed ``CALL_CENTRE_*``, the same crm reads). The messages to
    the prospect read ``QUALIFY_MESSAGE_*``, ``QUALIFY_SMTP_*``, ``QUALIFY_OVH_*`` and
    ``QUALIFY_LEAD_TOKEN_KEY`` (docs/messaging.md)."""

    model_config = SettingsConfigDict(env_prefix="QUALIFY_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "qualify"

    http_port: int = 8002

    # The call centre's business time (deadlines of the queue) comes from CallCentreSettings:
    # unprefixed CALL_CENTRE_* variables, the calendar crm's SLA reads too.
    first_contact_minutes: int = Field(
        default=15, ge=1, le=10_000, description="First-contact deadline, business minutes."
    )
    first_contact_minutes_by_source: dict[str, int] = Field(
        default_factory=dict,
        description='Per-source deadline in business minutes, e.g. {"facebook": 5} (JSON).',
    )

    # Claims.
    claim_lease_minutes: int = Field(default=10, ge=1, le=480)

    # Attempts.
    unreachable_after_attempts: int = Field(
        default=5, ge=1, le=100, description="Unanswered attempts before 'unreachable'."
    )
    attempt_max_backdate_minutes: int = Field(
        default=24 * 60, ge=0, description="How far in the past an attempt's time may be."
    )

    # The contact schedule after an attempt (business minutes of the call centre, then moved
    # into the legal calling window when the next contact is a call).
    retry_ladder_business_minutes: list[int] = Field(
        default_factory=lambda: [30, 120, 540],
        min_length=1,
        max_length=20,
        description="Wait before the next try after the 1st, 2nd, 3rd… unanswered attempt "
        "(the last step repeats); 540 is one call-centre day (JSON list).",
    )
    followup_after_reached_business_minutes: int = Field(
        default=540,
        ge=1,
        le=100_000,
        description="Next contact after the prospect was reached (or refused, or the number "
        "was wrong) and the lead not closed.",
    )

    # Call-backs the prospect asked for.
    callback_max_days_ahead: int = Field(default=30, ge=1, le=365)

    # Reopening a disqualified lead: its operator within this delay, a manager any time.
    reopen_window_hours: int = Field(default=24, ge=0, le=24 * 365)

    # Direct routing (the API's per-source and per-site rules come first).
    routing_default_path: RoutingPath = Field(
        default="qualify",
        description="Path of a lead no routing rule matches: qualify (operators) or direct "
        "(to dispatch at receipt).",
    )
    direct_channel: SalesChannel = Field(
        default="in_store",
        description="Sales channel of a machine qualification when its rule names none.",
    )
    direct_intent: DirectIntent = "buy"

    @field_validator("retry_ladder_business_minutes")
    @classmethod
    def ladder_steps(cls, value: list[int]) -> list[int]:
        if any(not 1 <= minutes <= 100_000 for minutes in value):
            raise ValueError("each step is 1 to 100,000 business minutes")
        return value

    @field_validator("first_contact_minutes_by_source")
    @classmethod
    def positive_minutes(cls, value: dict[str, int]) -> dict[str, int]:
        if any(minutes < 1 for minutes in value.values()):
            raise ValueError("deadlines must be at least 1 business minute")
        return value
