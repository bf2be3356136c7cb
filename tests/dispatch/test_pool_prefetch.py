"""Intake's probe brings the first page of the lead's likely pool on PostgreSQL
(``dispatch.routing.repository.prefetch``): it serves that lead's routing only, for the pool and
order it was read for, and is forgotten at the end of the lead's step or when a seller's load
changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatch.assignments.intake import qualified_handler
from dispatch.models import Assignment
from dispatch.routing.repository import (
    SellerPoolRepository,
    pool_released,
    prefetch,
    remember_pools,
)
from dispatch.routing.strategy import SortKey
from shared.db.session import session_scope
from tests.dispatch.conftest import DispatchApi
from tests.dispatch.test_statements_per_lead import _envelope
from tests.support.executed import executed

pytestmark = pytest.mark.postgres

_PREFETCHED = "dispatch.routing.prefetched"
_ORDER: tuple[SortKey, ...] = ("load", "last_offered", "id")


@pytest.fixture
def api(dispatch_on_postgres: DispatchApi) -> DispatchApi:
    return dispatch_on_postgres


async def test_the_page_read_with_the_probe_routes_the_lead_and_is_then_forgotten(
    api: DispatchApi,
) -> None:
    await api.site()
    sellers = sorted([(await api.seller(name))["id"] for name in ("alice", "bob")])
    handler = qualified_handler(api.runtime, api.handoff())
    envelope = _envelope(api)
    async with session_scope(api.runtime.session_factory) as session:
        with executed(api.runtime.engine) as seen:
            await handler(session, envelope)
        assert _PREFETCHED not in session.info  # not left for the batch's next lead
        await handler(session, envelope)  # a redelivery: recorded already, nothing routed
        assert _PREFETCHED not in session.info
    assert len(seen) == 2  # the probe with the pool, the writes
    assert "LATERAL" in seen[0]
    async with api.runtime.session_factory() as session:
        offered = (
            await session.scalars(
                select(Assignment.seller_id).where(Assignment.lead_id == envelope.subject)
            )
        ).all()
    assert offered == [sellers[0]]  # least loaded, ties by id: as read apart


async def test_a_held_page_serves_only_its_pool_and_order_and_not_after_a_load_change(
    api: DispatchApi,
) -> None:
    await api.site()
    await api.seller("alice")
    async with session_scope(api.runtime.session_factory) as session:
        remember_pools(session)
        pools = SellerPoolRepository(session)
        # A page held for another site: not used, read from the database (and dropped).
        prefetch(session, ("in_store", "paris", _ORDER), [])
        with executed(api.runtime.engine) as seen:
            page = await pools.page(
                pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=16
            )
        assert (len(seen), len(page)) == (1, 1)
        assert _PREFETCHED not in session.info
        # A page of the pool held, then a load went down: read from the database.
        prefetch(session, ("in_store", "lyon", _ORDER), [])
        pool_released(session)
        with executed(api.runtime.engine) as seen:
            page = await pools.page(
                pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=16
            )
        assert (len(seen), len(page)) == (1, 1)
        # Held for this pool and order: served without a statement, once.
        prefetch(session, ("in_store", "lyon", _ORDER), [])
        with executed(api.runtime.engine) as seen:
            held = await pools.page(
                pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=16
            )
            assert list(held) == []
            again = await pools.page(
                pool="in_store", site_id="lyon", order=_ORDER, offset=0, limit=16
            )
        assert (len(seen), len(again)) == (1, 1)
