"""SQL of routing: pages of a pool's sellers in a strategy's order, read off the
``ix_seller_pool (mode, active, open_count, last_offered_at, id)`` index."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.sql.elements import ColumnElement

from dispatch.directory.schemas import SellerMode
from dispatch.models import Seller
from dispatch.routing.strategy import SortKey
from shared.db.repository import Repository

_ORDER: dict[SortKey, ColumnElement[Any]] = {
    "load": Seller.open_count.asc(),
    "last_offered": Seller.last_offered_at.asc().nulls_first(),
    "id": Seller.id.asc(),
}


@cache
def _page_query(pool: SellerMode, order: tuple[SortKey, ...]) -> Select[Seller]:
    """The page statement of a pool in an order, built once (site, offset, limit are bound)."""
    query = select(Seller).where(
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


class SellerPoolRepository(Repository):
    async def page(
        self,
        *,
        pool: SellerMode,
        site_id: str | None,
        order: Sequence[SortKey],
        offset: int,
        limit: int,
    ) -> Sequence[Seller]:
        """Active sellers of the pool (and of the site, in store) under their capacity."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if pool == "in_store":
            params["site_id"] = site_id
        return (await self.session.scalars(_page_query(pool, tuple(order)), params)).all()
