"""SQL of the directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, bindparam, case, inspect, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import identity_key

from dispatch.models import ContactSchedule, Seller, Site, VehicleStock
from dispatch.settings import DispatchSettings
from shared.db.repository import Repository


@dataclass(frozen=True)
class Schedule:
    """The contact schedule that applies to one lead (defaults from the settings)."""

    accept_within_minutes: int
    first_contact_within_minutes: int
    followup_days: tuple[int, ...]
    escalation_seller_id: str | None


# The schedules that may apply to a source and a site (a NULL column applies to any; a NULL
# parameter matches no value), built once.
_SCHEDULES_FOR = select(ContactSchedule).where(
    or_(ContactSchedule.source.is_(None), ContactSchedule.source == bindparam("source")),
    or_(ContactSchedule.site_id.is_(None), ContactSchedule.site_id == bindparam("site_id")),
)


def best_schedule_id(source: ColumnElement[str], site_id: ColumnElement[str]) -> ScalarSelect[str]:
    """The id of the most specific schedule of a source and a site (``schedule_for``'s choice),
    to join in another statement (intake's probe)."""
    candidate = aliased(ContactSchedule)
    return (
        select(candidate.id)
        .where(
            or_(candidate.source.is_(None), candidate.source == source),
            or_(candidate.site_id.is_(None), candidate.site_id == site_id),
        )
        .order_by(
            case((candidate.site_id.is_(None), 1), else_=0),
            case((candidate.source.is_(None), 1), else_=0),
            candidate.created_at,
            candidate.id,
        )
        .limit(1)
        .scalar_subquery()
    )


def schedule_of(
    settings: DispatchSettings, best: ContactSchedule | None, site: Site | None
) -> Schedule:
    """The schedule that applies, from the most specific row (None: the settings' defaults) and
    the site (its manager is the escalation seller unless the row names one)."""
    manager = site.manager_seller_id if site is not None else None
    if best is None:
        return Schedule(
            settings.default_accept_minutes,
            settings.default_first_contact_minutes,
            tuple(settings.default_followup_days),
            manager,
        )
    return Schedule(
        best.accept_within_minutes,
        best.first_contact_within_minutes,
        tuple(best.followup_days),
        best.escalation_seller_id or manager,
    )


_VEHICLE = select(VehicleStock).where(VehicleStock.ad_ref == bindparam("ad_ref"))
_SITE = select(Site).where(Site.id == bindparam("id"))
_SELLER = select(Seller).where(Seller.id == bindparam("id"))

_Row = TypeVar("_Row", Site, Seller)


class DirectoryRepository(Repository):
    async def add(self, row: Site | Seller | ContactSchedule | VehicleStock) -> None:
        """A new row of the directory, flushed (its id and defaults are known after)."""
        self.session.add(row)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def site(self, site_id: str | None) -> Site | None:
        return None if site_id is None else await self._by_id(Site, _SITE, site_id)

    async def sites(self) -> Sequence[Site]:
        return (await self.session.scalars(select(Site).order_by(Site.id))).all()

    async def seller(self, seller_id: str) -> Seller | None:
        return await self._by_id(Seller, _SELLER, seller_id)

    async def _by_id(self, model: type[_Row], query: Select[_Row], key: str) -> _Row | None:
        """``session.get`` for the hot paths: the session's own copy when it holds one fully
        loaded, else a prebuilt select (a missed ``session.get`` builds its statement anew)."""
        known: Any = self.session.identity_map.get(identity_key(model, key))
        if known is not None and isinstance(known, model):
            state = inspect(known)
            if not state.expired_attributes and not state.deleted and not state.was_deleted:
                return known
        row: _Row | None = await self.session.scalar(query, {"id": key})
        return row

    async def seller_for_update(self, seller_id: str) -> Seller | None:
        return await self.session.scalar(
            select(Seller).where(Seller.id == seller_id).with_for_update()
        )

    async def seller_by_token(self, token_id: str) -> Seller | None:
        return await self.session.scalar(select(Seller).where(Seller.token_id == token_id))

    async def sellers(
        self, *, site_id: str | None, after: str | None, limit: int
    ) -> Sequence[Seller]:
        query = select(Seller).order_by(Seller.id).limit(limit)
        if site_id is not None:
            query = query.where(Seller.site_id == site_id)
        if after is not None:
            query = query.where(Seller.id > after)
        return (await self.session.scalars(query)).all()

    async def schedules(self) -> Sequence[ContactSchedule]:
        return (
            await self.session.scalars(select(ContactSchedule).order_by(ContactSchedule.created_at))
        ).all()

    async def schedule_exists(self, *, source: str | None, site_id: str | None) -> bool:
        query = select(ContactSchedule.id).where(
            ContactSchedule.source.is_(None)
            if source is None
            else ContactSchedule.source == source,
            ContactSchedule.site_id.is_(None)
            if site_id is None
            else ContactSchedule.site_id == site_id,
        )
        return (await self.session.scalar(query.limit(1))) is not None

    async def schedule_for(
        self, settings: DispatchSettings, *, source: str | None, site_id: str | None
    ) -> Schedule:
        """The most specific schedule: source and site, then site, then source, then any."""
        rows = (
            await self.session.scalars(_SCHEDULES_FOR, {"source": source, "site_id": site_id})
        ).all()

        def rank(row: ContactSchedule) -> tuple[int, int]:
            return (row.site_id is not None, row.source is not None)

        site = await self.site(site_id)
        return schedule_of(settings, max(rows, key=rank) if rows else None, site)

    async def vehicle(self, ad_ref: str) -> VehicleStock | None:
        """The vehicle's stock row (most leads' vehicles have none: a prebuilt statement, not
        ``session.get``, whose look-up misses build a new statement each time)."""
        return await self.session.scalar(_VEHICLE, {"ad_ref": ad_ref})
