"""Managers' moves racing the rest of the life cycle on PostgreSQL (row locks, SKIP LOCKED): an
absent seller's leads moved while their tool still answers offers, two managers assigning the
same leads, and reroute timers firing while a manager assigns those leads. Whatever the order,
each lead ends with one open assignment, every seller's load equals their open assignments, and
nobody gets a 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from dispatch.assignments.deadlines import timer_handlers
from dispatch.models import Assignment, Seller
from dispatch.timers.runner import TimerRunner
from shared.db import create_engine
from shared.db.session import make_session_factory
from tests.dispatch.conftest import DispatchApi, dispatch_settings, start_dispatch
from tests.support.clock import Clock

LEADS = 16


def _pg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://")


async def _assert_loads_exact(api: DispatchApi) -> dict[str, int]:
    """Every seller's ``open_count`` is the number of their open assignments; returns the
    open assignments per lead."""
    async with api.runtime.session_factory() as session:
        counts = dict(
            (
                await session.execute(
                    select(Assignment.seller_id, func.count())
                    .where(Assignment.is_open.is_(True))
                    .group_by(Assignment.seller_id)
                )
            ).all()
        )
        loads = dict((await session.execute(select(Seller.id, Seller.open_count))).all())
        per_lead = dict(
            (
                await session.execute(
                    select(Assignment.lead_id, func.count())
                    .where(Assignment.is_open.is_(True))
                    .group_by(Assignment.lead_id)
                )
            ).all()
        )
    assert {seller: loads[seller] for seller in loads} == {
        seller: counts.get(seller, 0) for seller in loads
    }
    return {str(lead): int(count) for lead, count in per_lead.items()}


@pytest.mark.postgres
async def test_moving_an_absent_sellers_leads_while_their_tool_answers(
    postgres_url: str, clock: Clock
) -> None:
    settings = dispatch_settings(_pg(postgres_url))
    async with start_dispatch(settings, clock) as api:
        await api.site()
        ana = (await api.seller("Ana", capacity=100))["id"]
        leads = [await api.qualify() for _ in range(LEADS)]
        offers = [(await api.assignments(lead))[0] for lead in leads]
        ana_client = await api.seller_client(ana)
        for offer in offers[: LEADS // 2]:
            assert (await ana_client.post(f"/v1/assignments/{offer['id']}/accept")).is_success
        bob = (await api.seller("Bob", capacity=100))["id"]
        manager = await api.client_for_roles("manager")

        async def tool(offer: dict[str, Any], index: int) -> int:
            url = f"/v1/assignments/{offer['id']}"
            if index < LEADS // 2:
                response = await ana_client.post(f"{url}/contacted", json={"channel": "phone"})
            elif index % 2:
                response = await ana_client.post(f"{url}/accept")
            else:
                response = await ana_client.post(f"{url}/decline", json={"reason": "busy"})
            return response.status_code

        async def move() -> httpx.Response:
            return await manager.post(
                f"/v1/sellers/{ana}/reassign", json={"seller_id": bob, "mode": "direct"}
            )

        results = await asyncio.gather(
            move(), *(tool(offer, index) for index, offer in enumerate(offers))
        )
        moved, statuses = results[0], results[1:]
        assert isinstance(moved, httpx.Response)
        assert moved.status_code == 200, moved.text
        assert set(statuses) <= {200, 409}  # before the move, or refused after it
        per_lead = await _assert_loads_exact(api)
        assert per_lead == dict.fromkeys(leads, 1)  # one open assignment each
        assert await api.open_count(ana) == 0
        assert await api.open_count(bob) == LEADS
        # Each lead is Bob's: moved by the manager, or offered to him after Ana declined.
        for lead in leads:
            [open_one] = [a for a in await api.assignments(lead) if a["ended_at"] is None]
            assert open_one["seller_id"] == bob
        withdrawn = await api.events("assignment.withdrawn.v1")
        assert len(withdrawn) == len(moved.json()["moved"])


@pytest.mark.postgres
async def test_two_managers_assigning_the_same_leads_one_wins_each(
    postgres_url: str, clock: Clock
) -> None:
    settings = dispatch_settings(_pg(postgres_url))
    async with start_dispatch(settings, clock) as api:
        await api.site()
        leads = [await api.qualify() for _ in range(LEADS)]  # nobody yet: all escalated
        bea = (await api.seller("Bea", capacity=100))["id"]
        cid = (await api.seller("Cid", capacity=100))["id"]
        first = await api.client_for_roles("manager")
        second = await api.client_for_roles("manager")

        async def assign(client: httpx.AsyncClient, lead: str, seller: str) -> int:
            response = await client.post(
                f"/v1/leads/{lead}/assign", json={"seller_id": seller, "mode": "direct"}
            )
            return response.status_code

        statuses = await asyncio.gather(
            *(assign(first, lead, bea) for lead in leads),
            *(assign(second, lead, cid) for lead in leads),
        )
        assert Counter(statuses) == {200: LEADS, 409: LEADS}  # the loser finds it held
        per_lead = await _assert_loads_exact(api)
        assert per_lead == dict.fromkeys(leads, 1)
        assert await api.open_count(bea) + await api.open_count(cid) == LEADS
        assert len(await api.events("assignment.reassigned.v1")) == LEADS


@pytest.mark.postgres
async def test_reroute_timers_firing_while_a_manager_assigns_the_leads(
    postgres_url: str, clock: Clock
) -> None:
    settings = dispatch_settings(_pg(postgres_url))
    async with start_dispatch(settings, clock) as api:
        await api.site()
        leads = [await api.qualify() for _ in range(LEADS)]  # escalated, reroute in 15 min
        clock.advance(minutes=16)
        dan = (await api.seller("Dan", capacity=100))["id"]  # routing would offer him too
        manager = await api.client_for_roles("manager")
        engine = create_engine(settings.resolved_database_url())
        try:
            runner = TimerRunner(
                make_session_factory(engine),
                settings,
                timer_handlers(settings, api.runtime.outbox),
                clock=clock,
            )

            async def assign(lead: str) -> int:
                response = await manager.post(
                    f"/v1/leads/{lead}/assign", json={"seller_id": dan, "mode": "direct"}
                )
                return response.status_code

            results = await asyncio.gather(
                runner.fire_due(limit=LEADS), *(assign(lead) for lead in leads)
            )
        finally:
            await engine.dispose()
        assert set(results[1:]) == {200}  # an offer made by routing is withdrawn, not a clash
        per_lead = await _assert_loads_exact(api)
        assert per_lead == dict.fromkeys(leads, 1)
        for lead in leads:
            state = await api.lead(lead)
            assert (state["status"], state["seller_id"]) == ("assigned", dan)
            # No reroute is left pending once the lead is held.
            assert [kind for kind, _, _ in await api.pending_timers(lead)] == ["first_contact"]
        assert await api.open_count(dan) == LEADS
