"""Routing decisions: which pool (site or full web) and which seller, now.

in_store leads go to the sellers of the site that holds the vehicle (vehicle stock), else of the
site chosen in qualification; full_web leads (and in_store leads without a known site, or whose
site stays closed beyond its fallback delay when the site allows it) go to the full-web pool.
Skills are relaxed when nobody has them all (brand of the vehicle, language, financing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.calendars import PARIS, full_web_calendar, on_shift, site_calendar
from dispatch.directory.repository import DirectoryRepository
from dispatch.directory.schemas import SellerMode
from dispatch.models import DispatchLead, Seller, Site, VehicleStock
from dispatch.routing.repository import PAGE_SIZE, SellerPoolRepository
from dispatch.routing.strategy import RoutingStrategy, SortKey
from dispatch.settings import DispatchSettings
from shared.business_time import BusinessCalendar

_BATCH = PAGE_SIZE


@dataclass(frozen=True)
class Target:
    """Where a lead is routed: a pool, the site (in_store) and that pool's business calendar."""

    pool: SellerMode
    site: Site | None
    calendar: BusinessCalendar
    reason: str

    @property
    def site_id(self) -> str | None:
        return self.site.id if self.site is not None else None


@dataclass
class SqlCandidatePool:
    """The ``CandidatePool`` of one decision: the database sorts and pages the pool; the
    rules it cannot index (skills, shifts, absences, this round's exclusions) are applied here."""

    sellers: SellerPoolRepository
    target: Target
    now: datetime
    required_skills: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    examined: int = field(default=0)

    async def ordered(self, order: Sequence[SortKey]) -> AsyncIterator[Seller]:
        if self.target.pool == "in_store" and not self.target.calendar.is_open(self.now):
            return  # the store is closed (night, lunch break, holiday, closure)
        timezone = self.target.site.timezone if self.target.site is not None else PARIS
        pool, site_id = self.target.pool, self.target.site_id
        # The sellers whose place this unit of work knows already (a batch's earlier lead read
        # the page), then the pool read page by page without them.
        seen: set[str] = set()
        for seller in self.sellers.remembered(pool=pool, site_id=site_id, order=order):
            seen.add(seller.id)
            if self._eligible(seller, timezone):
                yield seller
        offset = 0
        while True:
            batch = await self.sellers.page(
                pool=pool, site_id=site_id, order=order, offset=offset, limit=_BATCH
            )
            for seller in batch:
                if seller.id not in seen and self._eligible(seller, timezone):
                    yield seller
            if len(batch) < _BATCH:
                return
            offset += _BATCH

    def _eligible(self, seller: Seller, timezone: str) -> bool:
        """The rules the database does not index: this round's exclusions, skills, shifts."""
        self.examined += 1
        return (
            seller.id not in self.excluded
            and self.required_skills.issubset(seller.skills)
            and on_shift(seller, self.now, timezone)
        )


def required_skills(lead: DispatchLead, make: str | None = None) -> frozenset[str]:
    skills = set()
    if make:
        skills.add(f"brand:{make.strip().lower()}")
    if lead.language and lead.language != "fr":
        skills.add(f"lang:{lead.language}")
    if lead.financing_wanted:
        skills.add("financing")
    return frozenset(skills)


class _Unread:
    """The vehicle's stock row was not read by the caller (``decide`` reads it)."""


_UNREAD = _Unread()


async def target_for(
    session: AsyncSession,
    lead: DispatchLead,
    settings: DispatchSettings,
    now: datetime,
    *,
    stock: VehicleStock | _Unread | None = _UNREAD,
) -> Target:
    """``stock``: the lead's vehicle, when the caller has read it already (one read a step)."""
    full_web = Target("full_web", None, full_web_calendar(settings.full_web_hours), "full_web")
    if lead.channel != "in_store":
        return full_web
    directory = DirectoryRepository(session)
    site: Site | None = None
    reason = "qualified_site"
    if lead.vehicle_ad_ref:
        if isinstance(stock, _Unread):
            stock = await directory.vehicle(lead.vehicle_ad_ref)
        if stock is not None:
            site = await directory.site(stock.site_id)
            reason = "vehicle_site"
    if site is None and lead.site_id:
        site = await directory.site(lead.site_id)
    if site is None:
        return Target(full_web.pool, None, full_web.calendar, "no_site_fallback")
    calendar = site_calendar(site)
    if site.full_web_fallback and not calendar.is_open(now):
        reopens = calendar.next_open(now)
        if reopens - now > timedelta(minutes=site.fallback_after_minutes):
            return Target(full_web.pool, None, full_web.calendar, "site_closed_fallback")
    return Target("in_store", site, calendar, reason)


@dataclass(frozen=True)
class Decision:
    target: Target
    seller: Seller | None
    strategy: str
    relaxed_skills: bool = False


async def decide(
    session: AsyncSession,
    lead: DispatchLead,
    *,
    settings: DispatchSettings,
    strategy: RoutingStrategy,
    now: datetime,
    excluded: frozenset[str] = frozenset(),
    stock: VehicleStock | _Unread | None = _UNREAD,
) -> Decision:
    """Choose a seller for the lead (None when nobody eligible is available now). ``stock``:
    the lead's vehicle, when the caller has read it already (else it is read here, once)."""
    if isinstance(stock, _Unread):
        ad_ref = lead.vehicle_ad_ref
        stock = await DirectoryRepository(session).vehicle(ad_ref) if ad_ref else None
    target = await target_for(session, lead, settings, now, stock=stock)
    skills = required_skills(lead, stock.make if stock is not None else None)
    sellers = SellerPoolRepository(session)
    pool = SqlCandidatePool(sellers, target, now, skills, excluded)
    seller = await strategy.choose(pool)
    if seller is None and skills:
        pool = SqlCandidatePool(sellers, target, now, frozenset(), excluded)
        seller = await strategy.choose(pool)
        return Decision(target, seller, strategy.name, relaxed_skills=seller is not None)
    return Decision(target, seller, strategy.name)
