"""Durable timers on PostgreSQL: two replicas fire every due timer exactly once (FOR UPDATE SKIP
LOCKED), a restarted worker picks up where the previous one stopped, and a timer whose effects
fail is rolled back and fired later: nothing fires twice, nothing is missed."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.assignments.deadlines import timer_handlers
from dispatch.models import Timer
from dispatch.timers.kinds import TimerOutcome
from dispatch.timers.runner import TimerRunner
from dispatch.webhooks.delivery import WebhookSender
from shared.db import create_engine
from shared.db.session import make_session_factory
from tests.dispatch.conftest import Receiver, dispatch_settings, start_dispatch
from tests.support.clock import Clock

LEADS = 40


async def _timer_counts(api: Any) -> dict[tuple[str, str | None], int]:
    async with api.runtime.session_factory() as session:
        rows = (
            await session.execute(
                select(Timer.fired_by, Timer.outcome, func.count()).group_by(
                    Timer.fired_by, Timer.outcome
                )
            )
        ).all()
    return {(str(fired_by), outcome): count for fired_by, outcome, count in rows}


@pytest.mark.postgres
async def test_two_replicas_fire_each_timer_once_and_restart_misses_nothing(
    postgres_url: str, clock: Clock
) -> None:
    settings = dispatch_settings(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
    async with start_dispatch(settings, clock) as api:
        await api.site()
        # Nobody works at this site: each lead is escalated with a reroute timer (+15 min).
        leads = [await api.qualify() for _ in range(LEADS)]
        assert len(await api.events("lead.escalated.v1")) == LEADS
        clock.advance(minutes=16)

        # Replica 1 starts, fires a few, then "crashes" on one timer: rolled back, retried.
        handlers = timer_handlers(settings, api.runtime.outbox)
        reroute = handlers["reroute"]
        crash = {"next": False}

        async def flaky(session: AsyncSession, timer: Timer, now: datetime) -> TimerOutcome:
            if crash["next"]:
                crash["next"] = False
                raise RuntimeError("worker died mid-way")
            return await reroute(session, timer, now)

        engines = [create_engine(settings.resolved_database_url()) for _ in range(3)]
        try:
            factories = [make_session_factory(engine) for engine in engines]
            first = TimerRunner(
                factories[0],
                settings,
                {**handlers, "reroute": flaky},
                clock=clock,
                name="replica-1",
            )
            assert await first.fire_due(limit=5) == 5

            crash["next"] = True
            assert await first.fire_one() == "failed"

            # Replica 1 is gone; a restarted replica 2 and replica 3 run concurrently.
            second = TimerRunner(factories[1], settings, handlers, clock=clock, name="replica-2")
            third = TimerRunner(factories[2], settings, handlers, clock=clock, name="replica-3")
            fired = await asyncio.gather(second.fire_due(limit=1000), third.fire_due(limit=1000))
            assert sum(fired) == LEADS - 5 - 1  # the failed one is postponed a minute

            clock.advance(minutes=2)
            assert await second.fire_due(limit=1000) == 1  # the postponed one, not missed
            assert await third.fire_due(limit=1000) == 0
        finally:
            for engine in engines:
                await engine.dispose()

        counts = await _timer_counts(api)
        fired_reroutes = sum(
            count for (by, outcome), count in counts.items() if outcome == "still_unassigned"
        )
        assert fired_reroutes == LEADS  # each fired once
        # Each firing scheduled exactly one new reroute: twice would mean a double firing.
        assert counts[("None", None)] == LEADS
        for lead in leads[:3]:
            assert (await api.lead(lead))["status"] == "unassigned"


@pytest.mark.postgres
async def test_two_webhook_senders_deliver_each_message_once(
    postgres_url: str, clock: Clock, receiver: Receiver
) -> None:
    settings = dispatch_settings(
        postgres_url.replace("postgresql://", "postgresql+asyncpg://"), webhook_batch_size=7
    )
    async with start_dispatch(settings, clock) as api:
        await api.site()
        seller = await api.seller("Hook", capacity=100, webhook_url=receiver.url("hook"))
        receiver.secrets["hook"] = seller["webhook_secret"]
        for _ in range(30):
            await api.qualify()
        engines = [create_engine(settings.resolved_database_url()) for _ in range(2)]
        try:
            async with httpx.AsyncClient() as client:
                senders = [
                    WebhookSender(
                        make_session_factory(engine),
                        settings,
                        client,
                        outbox=api.runtime.outbox,
                        clock=clock,
                    )
                    for engine in engines
                ]

                async def drain(sender: WebhookSender) -> int:
                    total = 0
                    while sent := await sender.send_due():
                        total += sent
                    return total

                counts = await asyncio.gather(*(drain(sender) for sender in senders))
        finally:
            for engine in engines:
                await engine.dispose()
        ids = [message.webhook_id for message in receiver.of("hook")]
        assert sum(counts) == 30
        assert len(ids) == 30
        assert len(set(ids)) == 30  # no message sent twice
        assert receiver.rejected == 0
