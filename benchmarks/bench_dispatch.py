"""Dispatch on PostgreSQL (the production path): routing decisions per second with 20 and with
2,000 sellers (100,000 open assignments in the database), and signed webhook deliveries per
second through the worker's sender (claims with ``FOR UPDATE SKIP LOCKED``, one sender and two
concurrent senders) to a receiver in its own process, beside raw signed httpx POSTs to the same
receiver measured in the same run.

Routing reads the pool through the indexed columns (``open_count`` is kept on the seller row),
so the cost of a decision should barely grow with the number of sellers: the issue asks for the
cost at 2,000 sellers to stay within 3x of the cost at 20. The receiver verifies every
signature and records every delivery id: the run checks each message arrived exactly once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.pipeline.receiver import receiver_process, records
from benchmarks.postgres import fresh_database, vacuum_analyze
from dispatch import MIGRATIONS_DIR
from dispatch.models import DispatchLead, Seller, Site, infra, metadata
from dispatch.routing.engine import decide
from dispatch.routing.strategy import strategy_named
from dispatch.settings import DispatchSettings
from dispatch.webhooks.delivery import WebhookSender, signed_headers, webhook_http_client
from dispatch.webhooks.service import render_body
from shared.db import create_engine
from shared.db.migrate import upgrade
from shared.db.session import SessionFactory, make_session_factory, session_scope
from shared.outbox import Outbox, event_source

TABLES = metadata.tables
OPEN_ASSIGNMENTS = 100_000
DECISIONS = 300
DELIVERIES = 600
SENDERS = (1, 2)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# A Tuesday 11:00 in Paris: open, everybody on shift.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
# The receiver listens on loopback, which webhooks may reach only when allowed (SSRF guard).
WEBHOOK_SETTINGS = DispatchSettings(
    webhook_batch_size=50, webhook_allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),)
)


async def _database(url: str) -> tuple[SessionFactory, AsyncEngine]:
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url)
    engine = create_engine(url)
    return make_session_factory(engine), engine


async def _populate(factory: SessionFactory, sellers: int) -> DispatchLead:
    async with session_scope(factory) as session:
        session.add(
            Site(
                id="lyon",
                name="Lyon",
                postcode="69003",
                timezone="Europe/Paris",
                opening_hours="mon-sat 08:00-20:00",
                holiday_subdivision=None,
                closures=[],
                full_web_fallback=False,
                fallback_after_minutes=120,
                manager_seller_id=None,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        await session.flush()
        seller_ids = [str(uuid.uuid4()) for _ in range(sellers)]
        per_seller = OPEN_ASSIGNMENTS // sellers  # 50 each with 2,000 sellers
        await session.execute(
            insert(TABLES["seller"]),
            [
                {
                    "id": seller_id,
                    "display_name": f"Seller {index}",
                    "mode": "full_web",
                    "site_id": None,
                    "skills": [],
                    "capacity": OPEN_ASSIGNMENTS,  # never the limit here
                    "shifts": "mon-sat 08:00-20:00",
                    "absences": [],
                    "active": True,
                    # Loads spread so the least loaded one is somewhere in the middle.
                    "open_count": per_seller + (index * 7919) % 5,
                    "last_offered_at": NOW - timedelta(seconds=index),
                    "token_id": None,
                    "webhook_url": None,
                    "webhook_secret": None,
                    "webhook_disabled_at": None,
                    "webhook_disabled_reason": None,
                    "webhook_failures": 0,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for index, seller_id in enumerate(seller_ids)
            ],
        )
        lead_rows = []
        assignment_rows = []
        for index in range(OPEN_ASSIGNMENTS):
            lead_id = str(uuid.uuid4())
            lead_rows.append(_lead_row(lead_id, "assigned"))
            assignment_rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "lead_id": lead_id,
                    "seller_id": seller_ids[index % sellers],
                    "site_id": None,
                    "status": "accepted",
                    "is_open": True,
                    "strategy": "least_loaded",
                    "offered_at": NOW - timedelta(hours=1),
                    "accept_due_at": NOW,
                    "accepted_at": NOW - timedelta(minutes=50),
                    "first_contact_due_at": NOW + timedelta(hours=1),
                    "contacted_at": None,
                    "contact_channel": None,
                    "appointment_at": None,
                    "followups_sent": 0,
                    "ended_at": None,
                    "end_reason": None,
                }
            )
        for start in range(0, OPEN_ASSIGNMENTS, 10_000):
            chunk = slice(start, start + 10_000)
            await session.execute(insert(TABLES["dispatch_lead"]), lead_rows[chunk])
            await session.execute(insert(TABLES["assignment"]), assignment_rows[chunk])
        lead = DispatchLead(**_lead_row(str(uuid.uuid4()), "unassigned"))
        session.add(lead)
    return lead


def _lead_row(lead_id: str, status: str) -> dict[str, object]:
    return {
        "lead_id": lead_id,
        "source": "facebook",
        "channel": "full_web",
        "site_id": None,
        "vehicle_ad_ref": None,
        "language": "fr",
        "financing_wanted": False,
        "do_not_contact": False,
        "followups_blocked": False,
        "qualification": {"lead_id": lead_id},
        "status": status,
        "seller_id": None,
        "routed_to": None,
        "escalated_at": None,
        "escalation_reason": None,
        "close_reason": None,
        "received_at": NOW,
        "qualified_at": NOW,
        "updated_at": NOW,
    }


async def _decisions_per_second(factory: SessionFactory, lead: DispatchLead) -> float:
    settings = DispatchSettings()
    strategy = strategy_named("least_loaded")
    async with factory() as session:
        lead = await session.merge(lead)
        for _ in range(20):  # warm-up (caches, statement compilation)
            await decide(session, lead, settings=settings, strategy=strategy, now=NOW)
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(DECISIONS):
                decision = await decide(
                    session, lead, settings=settings, strategy=strategy, now=NOW
                )
                assert decision.seller is not None
            rounds.append(DECISIONS / (time.perf_counter() - started))
    return statistics.median(rounds)


async def _queue_deliveries(factory: SessionFactory, seller_id: str, count: int) -> list[str]:
    body = render_body("assignment.offered", {"lead": {"lead_id": "x" * 36}}, NOW)
    ids = [f"msg_{uuid.uuid4().hex}" for _ in range(count)]
    async with session_scope(factory) as session:
        await session.execute(
            insert(TABLES["webhook_delivery"]),
            [
                {
                    "id": delivery_id,
                    "seller_id": seller_id,
                    "lead_id": None,
                    "event_type": "assignment.offered",
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                    "last_status_code": None,
                    "last_outcome": None,
                    "created_at": NOW,
                    "delivered_at": None,
                }
                for delivery_id in ids
            ],
        )
    return ids


async def _send_all(factory: SessionFactory, client: httpx.AsyncClient, senders: int) -> float:
    """Deliveries per second with ``senders`` concurrent senders (each its own transactions,
    as replicas would: ``SKIP LOCKED`` gives them different rows) until none is pending."""
    outbox = Outbox(infra.outbox_event, event_source("dispatch"))

    async def drain() -> int:
        sender = WebhookSender(factory, WEBHOOK_SETTINGS, client, outbox=outbox, clock=lambda: NOW)
        sent = 0
        while claimed := await sender.send_due():
            sent += claimed
        return sent

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*(drain() for _ in range(senders))))
    return sent / (time.perf_counter() - started)


async def _webhooks(url: str) -> tuple[dict[int, float], float, str]:
    """Sender rates (1 and 2 senders), the raw POST rate, and the exactly-once check."""
    factory, engine = await _database(url)
    rates: dict[int, float] = {}
    try:
        async with (
            receiver_process(SECRET) as receiver,
            webhook_http_client(WEBHOOK_SETTINGS) as sender_client,
            httpx.AsyncClient() as client,
        ):
            hook = f"{receiver}/hook"
            seller_id = str(uuid.uuid4())
            async with session_scope(factory) as session:
                session.add(_seller(seller_id, hook))
            expected: list[str] = []
            for senders in SENDERS:
                expected += await _queue_deliveries(factory, seller_id, DELIVERIES)
                rates[senders] = await _send_all(factory, sender_client, senders)
            received = await records(receiver)
            counts = Counter(record["id"] for record in received if record["valid"])
            invalid = sum(1 for record in received if not record["valid"])
            missing = sum(1 for delivery_id in expected if counts[delivery_id] == 0)
            twice = sum(1 for delivery_id in expected if counts[delivery_id] > 1)
            check = (
                f"{len(expected):,} messages: {missing} missing, {twice} received twice, "
                f"{invalid} bad signatures"
            )
            body = render_body("assignment.offered", {"lead": {"lead_id": "x" * 36}}, NOW)
            started = time.perf_counter()
            for start in range(0, DELIVERIES, 50):
                await asyncio.gather(
                    *(
                        client.post(
                            hook,
                            content=body.encode(),
                            headers=signed_headers(SECRET, f"raw_{n}", body, datetime.now(UTC)),
                        )
                        for n in range(start, start + 50)
                    )
                )
            raw_rate = DELIVERIES / (time.perf_counter() - started)
    finally:
        await engine.dispose()
    return rates, raw_rate, check


def _seller(seller_id: str, url: str) -> Seller:
    return Seller(
        id=seller_id,
        display_name="Tool",
        mode="full_web",
        site_id=None,
        skills=[],
        capacity=10,
        shifts="mon-sun 00:00-24:00",
        absences=[],
        active=True,
        open_count=0,
        last_offered_at=None,
        token_id=None,
        webhook_url=url,
        webhook_secret=SECRET,
        webhook_disabled_at=None,
        webhook_disabled_reason=None,
        webhook_failures=0,
        created_at=NOW,
        updated_at=NOW,
    )


async def run() -> str:
    rates: dict[int, float] = {}
    async with fresh_database("bench_dispatch_routing") as url:
        factory, engine = await _database(url)
        try:
            lead = await _populate(factory, 2000)
            await vacuum_analyze(url)
            rates[2000] = await _decisions_per_second(factory, lead)
            # The same database (100,000 open assignments) with only 20 active sellers.
            async with session_scope(factory) as session:
                keep = select(Seller.id).order_by(Seller.id).limit(20).scalar_subquery()
                await session.execute(
                    update(Seller).where(Seller.id.not_in(keep)).values(active=False)
                )
            await vacuum_analyze(url)
            rates[20] = await _decisions_per_second(factory, lead)
        finally:
            await engine.dispose()
    async with fresh_database("bench_dispatch_webhooks") as url:
        delivered, raw, check = await _webhooks(url)
    ratio = rates[20] / rates[2000]
    return (
        "## Dispatch: routing decisions and webhook deliveries (PostgreSQL)\n\n"
        "`benchmarks/bench_dispatch.py`. Routing decisions (least loaded, round-robin "
        "tie-break, full-web pool) on PostgreSQL with "
        f"{OPEN_ASSIGNMENTS:,} open assignments in the database (bulk-loaded, then VACUUM "
        f"ANALYZE); median of 3 rounds of {DECISIONS} decisions, in process. Webhook "
        f"deliveries: {DELIVERIES} signed messages per row through the worker's sender (claim "
        "with `FOR UPDATE SKIP LOCKED` and a lease, sign, POST, record the attempt; batches of "
        "50), with one sender and with two concurrent senders (two sessions in this process, "
        "as two replicas would claim), to a receiver in its own process (uvicorn, verifying "
        "each Standard Webhooks signature); beside raw signed httpx POSTs (50 concurrent) to "
        "the same receiver. Every delivery id is checked at the receiver: "
        f"{check}.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| decisions/s, 20 sellers | {rates[20]:,.0f} |\n"
        f"| decisions/s, 2,000 sellers | {rates[2000]:,.0f} |\n"
        f"| cost at 2,000 / cost at 20 (target at most 3x) | {ratio:.2f}x |\n"
        f"| webhook deliveries/s, one sender | {delivered[1]:,.0f} |\n"
        f"| webhook deliveries/s, two senders | {delivered[2]:,.0f} |\n"
        f"| raw signed httpx POSTs/s | {raw:,.0f} |\n"
        f"| one sender / raw | {delivered[1] / raw:.2f} |\n"
    )
