"""The calendars dispatch enforces, published as ``site.calendar-changed.v1`` (topic
``vo.directory``, key = site id, or ``full_web`` for the full-web pool): when a site is created
or its calendar changes, and all of them again when the worker starts and then every
``DISPATCH_CALENDAR_REPUBLISH_INTERVAL_S`` (or on an admin's request), so that a consumer (crm's
SLA clocks) can be built, or rebuilt, from the events alone. Each event is a whole calendar, not
a diff: the latest one of a key is the truth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.calendars import PARIS
from dispatch.directory.repository import DirectoryRepository
from dispatch.models import Site
from dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.db.session import SessionFactory, session_scope
from shared.events.payloads import FULL_WEB_POOL, SiteCalendarChangedV1
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

CALENDAR_CHANGED = "site.calendar-changed.v1"
Change = Literal["created", "updated", "republished"]


def calendar_of(site: Site) -> tuple[str, str, str | None, tuple[str, ...]]:
    """What of a site makes its calendar (a change of anything else publishes nothing)."""
    return (
        site.timezone,
        site.opening_hours,
        site.holiday_subdivision,
        tuple(sorted(site.closures)),
    )


def site_calendar_event(site: Site, change: Change, now: datetime) -> SiteCalendarChangedV1:
    return SiteCalendarChangedV1(
        calendar_id=site.id,
        site_id=site.id,
        pool="in_store",
        timezone=site.timezone,
        opening_hours=site.opening_hours,
        holiday_subdivision=site.holiday_subdivision,
        observe_holidays=True,
        closures=[date.fromisoformat(day) for day in sorted(site.closures)],
        change=change,
        changed_at=now,
    )


def full_web_calendar_event(settings: DispatchSettings, now: datetime) -> SiteCalendarChangedV1:
    """The full-web pool's hours (``DISPATCH_FULL_WEB_HOURS``), as ``full_web_calendar`` makes."""
    return SiteCalendarChangedV1(
        calendar_id=FULL_WEB_POOL,
        site_id=None,
        pool="full_web",
        timezone=PARIS,
        opening_hours=settings.full_web_hours,
        holiday_subdivision=None,
        observe_holidays=True,
        closures=[],
        change="republished",
        changed_at=now,
    )


async def publish_site_calendar(
    session: AsyncSession, outbox: Outbox, site: Site, change: Change, now: datetime
) -> None:
    await outbox.stage(session, CALENDAR_CHANGED, site.id, site_calendar_event(site, change, now))


async def republish_all(
    session: AsyncSession, outbox: Outbox, settings: DispatchSettings, now: datetime
) -> int:
    """Every site's calendar and the full-web pool's, in the caller's transaction."""
    sites = await DirectoryRepository(session).sites()
    for site in sites:
        await publish_site_calendar(session, outbox, site, "republished", now)
    await outbox.stage(
        session, CALENDAR_CHANGED, FULL_WEB_POOL, full_web_calendar_event(settings, now)
    )
    return len(sites) + 1


def republish_job(
    session_factory: SessionFactory, outbox: Outbox, settings: DispatchSettings, clock: Clock
) -> Callable[[], Awaitable[None]]:
    """The worker's periodic re-publication (its own transaction each time)."""

    async def republish() -> None:
        async with session_scope(session_factory) as session:
            published = await republish_all(session, outbox, settings, clock())
        log.info("dispatch.calendars_republished", calendars=published)

    return republish
