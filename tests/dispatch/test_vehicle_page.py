"""A lead with a vehicle: on PostgreSQL intake's probe reads the first page of the pool its
routing goes to with the rest (the vehicle's site's in store when its stock row says so, its own
site's otherwise, the full-web pool for a full-web lead), so routing reads no page of its own
(main read the page apart for every lead with a vehicle). The offers are those routing makes
without the probe's page (SQLite, which never prefetches, runs the same checks)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.assignments.intake import qualified_handler
from dispatch.models import Assignment
from shared.db.session import session_scope
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import DispatchApi
from tests.support.clock import Clock
from tests.support.executed import executed


@pytest.fixture
def api(dispatch_on_either: DispatchApi) -> DispatchApi:
    return dispatch_on_either


def _page_reads(statements: list[str]) -> list[str]:
    """Routing's own reads of a pool page (not the probe that brings one along)."""
    return [sql for sql in statements if sql.startswith("SELECT seller.id")]


async def _sellers(api: DispatchApi) -> dict[str, str]:
    """Two sites, a seller in each and one in the full-web pool; a vehicle in stock at paris."""
    await api.site("lyon")
    await api.site("paris")
    sellers = {
        "lyon": (await api.seller("lyon-1", site_id="lyon"))["id"],
        "paris": (await api.seller("paris-1", site_id="paris"))["id"],
        "web": (await api.seller("web-1", mode="full_web", site_id=None))["id"],
    }
    response = await api.admin.put("/v1/vehicles/AD-PARIS", json={"site_id": "paris"})
    assert response.status_code == 200, response.text
    return sellers


async def _offered_to(api: DispatchApi, lead_id: str) -> str:
    async with api.runtime.session_factory() as session:
        return (
            await session.scalars(select(Assignment.seller_id).where(Assignment.lead_id == lead_id))
        ).one()


@pytest.mark.parametrize(
    ("channel", "vehicle", "pool"),
    [
        ("in_store", "AD-PARIS", "paris"),  # in stock at another site: that site's pool
        ("in_store", "AD-UNKNOWN", "lyon"),  # not in stock: the lead's own site
        ("full_web", "AD-PARIS", "web"),  # a full-web lead goes to the full-web pool anyway
    ],
)
async def test_the_probe_reads_the_page_of_the_pool_a_vehicle_sends_the_lead_to(
    api: DispatchApi, channel: str, vehicle: str, pool: str
) -> None:
    sellers = await _sellers(api)
    with executed(api.runtime.engine) as seen:
        lead_id = await api.qualify(channel=channel, site="lyon", vehicle_ad_ref=vehicle)
    assert await _offered_to(api, lead_id) == sellers[pool]
    if api.runtime.engine.dialect.name == "postgresql":
        assert _page_reads(seen) == [], seen
        # The probe (with the page), the offer; a vehicle elsewhere: that site and its schedule.
        assert len(seen) == (4 if pool == "paris" else 2), seen


def _envelope(clock: Clock, **values: Any) -> Envelope:
    lead_id = str(uuid.uuid4())
    payload = LeadQualifiedV1(
        lead_id=lead_id,
        source="leboncoin",
        received_at=clock.now - timedelta(minutes=30),
        qualified_at=clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone=f"+3361{uuid.uuid4().int % 10**7:07d}"),
        intent="buy",
        channel="in_store",
        **values,
    )
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.qualified.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


async def test_a_batch_keeps_the_page_it_remembers_of_the_vehicles_site(
    api: DispatchApi, clock: Clock
) -> None:
    """A batch's first lead reads paris's pool; the second, qualified at lyon with a vehicle at
    paris, is routed from the page the batch remembers (its probe's page of paris is not held),
    and goes to paris's other seller, the least loaded."""
    sellers = await _sellers(api)
    other = (await api.seller("paris-2", site_id="paris"))["id"]
    first, second = sorted([sellers["paris"], other])
    envelopes = [
        _envelope(clock, site="paris"),
        _envelope(clock, site="lyon", vehicle_ad_ref="AD-PARIS"),
    ]
    handler = qualified_handler(api.runtime, api.handoff())
    with executed(api.runtime.engine) as seen:
        async with session_scope(api.runtime.session_factory) as session:
            for envelope in envelopes:
                await handler(session, envelope)
    assert [await _offered_to(api, str(envelope.subject)) for envelope in envelopes] == [
        first,
        second,
    ]
    if api.runtime.engine.dialect.name == "postgresql":
        assert _page_reads(seen) == [], seen
