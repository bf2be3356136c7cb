"""The service's rules built once from its settings: business calendar, calling rules, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import Request

from qualify.settings import QualifySettings
from shared.business_time import BusinessCalendar
from shared.clock import utcnow
from shared.contact_rules import CallingRules
from shared.settings import ServiceSettings


@dataclass
class Policy:
    settings: QualifySettings
    calendar: BusinessCalendar
    calling: CallingRules
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Policy:
        if not isinstance(settings, QualifySettings):
            raise TypeError("qualify needs QualifySettings")
        calendar = BusinessCalendar.from_spec(
            settings.business_hours,
            timezone=settings.business_timezone,
            subdivision=settings.holiday_subdivision,
            closures=settings.closures,
        )
        calling = CallingRules(
            hours=settings.calling_hours,
            timezone=settings.calling_timezone,
            subdivision=settings.calling_holiday_subdivision,
            max_calls=settings.calling_max_calls,
            period=timedelta(days=settings.calling_period_days),
            refusal_block=timedelta(days=settings.refusal_block_days),
            refusal_permanent_from=settings.refusal_permanent_from,
            own_request_exempt=settings.own_request_exempt,
            own_request_max_age=timedelta(hours=settings.own_request_max_age_hours),
        )
        return cls(settings=settings, calendar=calendar, calling=calling)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def first_contact_minutes(self, source: str) -> int:
        by_source = self.settings.first_contact_minutes_by_source
        return by_source.get(source, self.settings.first_contact_minutes)

    def due_at(self, source: str, received_at: datetime) -> datetime:
        return self.calendar.add_business_minutes(received_at, self.first_contact_minutes(source))

    @property
    def lease(self) -> timedelta:
        return timedelta(minutes=self.settings.claim_lease_minutes)


def policy_of(request: Request) -> Policy:
    policy = request.app.state.policy
    assert isinstance(policy, Policy)
    return policy
