"""The service's rules built once from its settings: business calendar and calling rules. "Now"
is not the policy's: routers take the runtime's clock (``NowDep``), the worker ``runtime.clock``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qualify.config_cache import ConfigCache
from qualify.settings import QualifySettings
from shared.business_time import BusinessCalendar
from shared.contact_rules import CallingRules


@dataclass(frozen=True)
class Policy:
    settings: QualifySettings
    calendar: BusinessCalendar
    calling: CallingRules
    # The routing rules and templates every new lead reads, cached behind their version.
    config: ConfigCache = field(default_factory=ConfigCache, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: QualifySettings) -> Policy:
        calendar = settings.call_centre_calendar()
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

    def first_contact_minutes(self, source: str) -> int:
        by_source = self.settings.first_contact_minutes_by_source
        return by_source.get(source, self.settings.first_contact_minutes)

    def due_at(self, source: str, received_at: datetime) -> datetime:
        return self.calendar.add_business_minutes(received_at, self.first_contact_minutes(source))

    @property
    def lease(self) -> timedelta:
        return timedelta(minutes=self.settings.claim_lease_minutes)
