"""SQL of routing: pages of a pool's sellers in a strategy's order, read off the
``ix_seller_pool (mode, active, open_count, last_offered_at, id)`` index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
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
        query = select(Seller).where(
            Seller.active.is_(True),
            Seller.mode == pool,
            Seller.open_count < Seller.capacity,
        )
        if pool == "in_store":
            query = query.where(Seller.site_id == site_id)
        query = query.order_by(*(_ORDER[key] for key in order)).offset(offset).limit(limit)
        return (await self.session.scalars(query)).all()
