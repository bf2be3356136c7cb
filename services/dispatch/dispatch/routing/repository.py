"""SQL of routing: pages of a pool's sellers in a strategy's order, read off the
``ix_seller_pool (mode, active, open_count, last_offered_at, id)`` index.

A unit of work that routes many leads (the intake consumer's batch) may remember the first
page of each pool it reads (``remember_pools``): the offers it makes then move its sellers'
loads in memory (``pool_offered``), and the next lead of that pool is served from memory as
long as the order read still holds. A seller is served from memory when the page held the
whole pool, when its load is as read, or when its new load still sorts strictly before the
page's last row (every seller not in the page sorted after that row), and only up to the first
seller whose place is uncertain; beyond it, or when no remembered seller is eligible, the pool
is read again (the database, with this transaction's
own increments, stays the source of truth). Loads only grow in memory; anything that lowers
one (``pool_released``) forgets the pages.

Intake may read the first page of the pool a new lead will most likely go to with its own
first read (``page_lateral``, PostgreSQL), when no page of that pool is remembered: the page is
held for the lead's step (``prefetch``) and serves its routing's first ``page`` call of the
same pool and order instead of a round trip; whatever the step does not use is forgotten at its
end (``forget_prefetched``) or at the seller's next load change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, overload

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import LateralFromClause

from dispatch.directory.schemas import SellerMode
from dispatch.models import Seller, VehicleStock
from dispatch.repositories.loaded import loaded
from dispatch.routing.strategy import SortKey
from shared.db.repository import Repository

_ORDER: dict[SortKey, ColumnElement[Any]] = {
    "load": Seller.open_count.asc(),
    "last_offered": Seller.last_offered_at.asc().nulls_first(),
    "id": Seller.id.asc(),
}
_POOLS = "dispatch.routing.pools"  # the session's ``info`` key of its remembered pages
_PREFETCHED = "dispatch.routing.prefetched"  # … and of the page intake read with its probe
PAGE_SIZE = 16  # the sellers a page holds (routing reads the pool page by page)
PoolKey = tuple[SellerMode, str | None, tuple[SortKey, ...]]


class SellerRef:
    """A seller of a page: its id, and its ORM instance, which a page read as driver values
    (``prefetch``) makes only when routing asks for it (``dispatch.repositories.loaded``):
    routing usually takes the page's first seller and no other."""

    __slots__ = ("_seller", "_session", "_values", "id")

    def __init__(
        self,
        seller_id: str,
        *,
        seller: Seller | None = None,
        session: AsyncSession | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        self.id = seller_id
        self._seller = seller
        self._session = session
        self._values = values

    @classmethod
    def of(cls, seller: Seller) -> SellerRef:
        return cls(seller.id, seller=seller)

    @classmethod
    def read(cls, session: AsyncSession, values: dict[str, Any]) -> SellerRef:
        """A seller read as the driver's values (every column attribute of ``Seller``)."""
        return cls(values["id"], session=session, values=values)

    def get(self) -> Seller:
        if self._seller is None:
            assert self._session is not None
            assert self._values is not None
            self._seller = loaded(self._session, Seller, self._values)
        return self._seller


Row = tuple[SellerRef, int, int, datetime | None]  # a seller and its load's columns as read


class _Sellers(Sequence[Seller]):
    """Sellers of a page, each one's instance made when it is first looked at."""

    def __init__(self, refs: list[SellerRef]) -> None:
        self._refs = refs

    def __len__(self) -> int:
        return len(self._refs)

    @overload
    def __getitem__(self, index: int) -> Seller: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Seller]: ...

    def __getitem__(self, index: int | slice) -> Seller | Sequence[Seller]:
        if isinstance(index, slice):
            return [ref.get() for ref in self._refs[index]]
        return self._refs[index].get()


@cache
def _page_query(
    pool: SellerMode, order: tuple[SortKey, ...]
) -> Select[Seller, int, int, datetime | None]:
    """The page statement of a pool in an order, built once (site, offset, limit are bound).
    The load's columns come as read now too (a seller the session holds already keeps the
    values it had: the remembered page needs the database's)."""
    query = select(Seller, Seller.open_count, Seller.capacity, Seller.last_offered_at).where(
        Seller.active.is_(True),
        Seller.mode == pool,
        Seller.open_count < Seller.capacity,
    )
    if pool == "in_store":
        query = query.where(Seller.site_id == bindparam("site_id"))
    return (
        query.order_by(*(_ORDER[key] for key in order))
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )


@cache
def page_lateral(
    pool: SellerMode, order: tuple[SortKey, ...]
) -> tuple[LateralFromClause, type[Seller], tuple[ColumnElement[Any], ...]]:
    """The first page of a pool in an order as a LATERAL subquery, the seller entity over it,
    and its order for the outer query (a join does not keep the subquery's): for a read that
    brings the page along (``prefetch``). Built once. In store, the site is the one of the
    outer query's ``vehicle_stock`` row when it has one (routing sends the lead where its
    vehicle is), else the one bound as ``site_id``."""
    query = select(Seller).where(
        Seller.active.is_(True), Seller.mode == pool, Seller.open_count < Seller.capacity
    )
    if pool == "in_store":
        site = func.coalesce(VehicleStock.site_id, bindparam("site_id"))
        query = query.where(Seller.site_id == site)
    page = query.order_by(*(_ORDER[key] for key in order)).limit(PAGE_SIZE).lateral("page")
    outer = {
        "load": page.c.open_count.asc(),
        "last_offered": page.c.last_offered_at.asc().nulls_first(),
        "id": page.c.id.asc(),
    }
    return page, aliased(Seller, page), tuple(outer[key] for key in order)


def prefetch(session: AsyncSession, key: PoolKey, rows: list[Row]) -> None:
    """Hold the first page of ``key`` read with the step's first read (``page_lateral``), for
    the step's routing; replaces any page held before."""
    session.info[_PREFETCHED] = (key, rows)


def forget_prefetched(session: AsyncSession) -> None:
    """The held page is not used after its step (the loads it read may move)."""
    session.info.pop(_PREFETCHED, None)


def remembers(session: AsyncSession, key: PoolKey) -> bool:
    """Whether this unit of work remembers a page of the pool in this order."""
    pools: _Pools | None = session.info.get(_POOLS)
    return pools is not None and key in pools.pages


@dataclass
class _Load:
    """A remembered seller and its load as this unit of work knows it."""

    seller: SellerRef
    open_count: int
    capacity: int
    last_offered_at: datetime | None
    moved: bool = False  # offered something since its page was read


def _rank(load: _Load, order: tuple[SortKey, ...]) -> tuple[Any, ...]:
    """The load's sort key in ``order`` without the id."""
    key: list[Any] = []
    for name in order:
        if name == "load":
            key.append(load.open_count)
        elif name == "last_offered":
            offered = load.last_offered_at
            key.append((0, 0.0) if offered is None else (1, offered.timestamp()))
    return tuple(key)


@dataclass
class _Page:
    loads: list[_Load]
    last: tuple[Any, ...] | None  # the last row's rank as read; None: the page held the pool


@dataclass
class _Pools:
    pages: dict[tuple[SellerMode, str | None, tuple[SortKey, ...]], _Page] = field(
        default_factory=dict
    )
    # Each page's own loads of a seller (a seller may be in the pages of several orders).
    loads: dict[str, list[_Load]] = field(default_factory=dict)


def remember_pools(session: AsyncSession) -> None:
    """Let this unit of work serve pool pages from memory (see the module's docstring)."""
    session.info.setdefault(_POOLS, _Pools())


def pool_offered(session: AsyncSession, seller_id: str, now: datetime) -> None:
    """The seller was offered a lead at ``now`` (its load grew by one) in this unit of work."""
    forget_prefetched(session)
    pools: _Pools | None = session.info.get(_POOLS)
    for load in pools.loads.get(seller_id, ()) if pools is not None else ():
        load.open_count += 1
        load.last_offered_at = now
        load.moved = True


def pool_released(session: AsyncSession) -> None:
    """A seller's load went down in this unit of work: the remembered pages are forgotten."""
    forget_prefetched(session)
    pools: _Pools | None = session.info.get(_POOLS)
    if pools is not None:
        pools.pages.clear()
        pools.loads.clear()


class SellerPoolRepository(Repository):
    def remembered(
        self, *, pool: SellerMode, site_id: str | None, order: Sequence[SortKey]
    ) -> Sequence[Seller]:
        """The sellers of the pool's remembered page whose place in ``order`` is certain, in
        that order (empty when nothing is remembered): under capacity, before any seller the
        page did not hold."""
        pools: _Pools | None = self.session.info.get(_POOLS)
        key = tuple(order)
        page = pools.pages.get((pool, site_id, key)) if pools is not None else None
        if page is None:
            return []
        # In the order now (seller ids are UUIDs: the database orders them as Python does),
        # up to the first whose place is uncertain: a moved seller not strictly before the
        # page's last row as read might sort after a seller the page did not hold.
        ranked = sorted(
            ((_rank(load, key), load.seller.id, load) for load in page.loads),
            key=lambda item: item[:2],
        )
        certain: list[SellerRef] = []
        for rank, _, load in ranked:
            if load.moved and page.last is not None and not rank < page.last:
                break
            if load.open_count < load.capacity:
                certain.append(load.seller)
        return _Sellers(certain)

    async def page(
        self,
        *,
        pool: SellerMode,
        site_id: str | None,
        order: Sequence[SortKey],
        offset: int,
        limit: int,
    ) -> Sequence[Seller]:
        """Active sellers of the pool (and of the site, in store) under their capacity. The
        first page is remembered when the unit of work remembers pools; it is the page held
        for this step (``prefetch``) when there is one of this pool and order."""
        rows = self._prefetched((pool, site_id, tuple(order))) if offset == 0 else None
        if rows is None or limit != PAGE_SIZE:
            params: dict[str, Any] = {"offset": offset, "limit": limit}
            if pool == "in_store":
                params["site_id"] = site_id
            result = await self.session.execute(_page_query(pool, tuple(order)), params)
            rows = [
                (SellerRef.of(seller), count, capacity, at)
                for seller, count, capacity, at in result
            ]
        pools: _Pools | None = self.session.info.get(_POOLS)
        if pools is not None and offset == 0:
            key = (pool, site_id, tuple(order))
            loads = [_Load(seller, count, capacity, at) for seller, count, capacity, at in rows]
            self._remember(pools, key, loads, full=len(rows) == limit)
        return _Sellers([seller for seller, _, _, _ in rows])

    def _prefetched(self, key: PoolKey) -> list[Row] | None:
        """The page held for this step, if it is of ``key`` (taken: used once)."""
        held: tuple[PoolKey, list[Row]] | None = self.session.info.pop(_PREFETCHED, None)
        return held[1] if held is not None and held[0] == key else None

    @staticmethod
    def _remember(
        pools: _Pools,
        key: tuple[SellerMode, str | None, tuple[SortKey, ...]],
        loads: list[_Load],
        *,
        full: bool,
    ) -> None:
        old = pools.pages.get(key)
        for load in old.loads if old is not None else ():
            pools.loads[load.seller.id].remove(load)
        for load in loads:  # as read now, this transaction's own offers included
            pools.loads.setdefault(load.seller.id, []).append(load)
        last = _rank(loads[-1], key[2]) if full and loads else None
        pools.pages[key] = _Page(loads, last)
