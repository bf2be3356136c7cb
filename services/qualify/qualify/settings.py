"""Qualify settings (env prefix ``QUALIFY_``)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from qualify.messages.settings import MessagingSettings
from shared.business_time import DEFAULT_CALL_CENTRE_HOURS, parse_weekly_hours
from shared.messaging.settings import LeadTokenSettings, OvhSmsSettings, SmtpSettings
from shared.settings import CallingRulesSettings, ServiceSettings


class QualifySettings(
    CallingRulesSettings,
    ServiceSettings,
    MessagingSettings,
    SmtpSettings,
    LeadTokenSettings,
    OvhSmsSettings,
):
    """The legal calling rules come from ``CallingRulesSettings``: unprefixed ``CALLING_*``
    variables, the same configuration dispatch reads. The messages to the prospect read
    ``QUALIFY_MESSAGE_*``, ``QUALIFY_SMTP_*``, ``QUALIFY_OVH_*`` and ``QUALIFY_LEAD_TOKEN_KEY``
    (docs/messaging.md)."""

    model_config = SettingsConfigDict(env_prefix="QUALIFY_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "qualify"

    http_port: int = 8002

    # Business time of the call centre (deadlines of the queue).
    business_hours: str = Field(
        default=DEFAULT_CALL_CENTRE_HOURS,
        description='Opening hours of the call centre, e.g. "mon-fri 09:00-12:30,13:30-19:00; '
        'sat 09:00-12:30" (local time).',
    )
    business_timezone: str = "Europe/Paris"
    holiday_subdivision: str | None = Field(
        default=None,
        description='French subdivision of the public holidays ("57", "6AE" Alsace-Moselle…).',
    )
    closures: list[date] = Field(default_factory=list, description="Extra closed days.")
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

    @field_validator("business_hours")
    @classmethod
    def hours_parse(cls, value: str) -> str:
        parse_weekly_hours(value)
        return value

    @field_validator("first_contact_minutes_by_source")
    @classmethod
    def positive_minutes(cls, value: dict[str, int]) -> dict[str, int]:
        if any(minutes < 1 for minutes in value.values()):
            raise ValueError("deadlines must be at least 1 business minute")
        return value
