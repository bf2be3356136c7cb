"""Qualify on PostgreSQL: queue listing and claim throughput with 100,000 waiting leads beside
the same with 1,000 (the cost must stay nearly flat: index-backed keyset reads, no full scans).

Each size gets its own fresh database (migrated to head, seeded in bulk, analysed); the requests
go through the real API in process (httpx ASGI transport), so the figures include FastAPI,
authentication and the unit of work. DSN: ``TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert, text, update
from sqlalchemy.engine import make_url

from qualify.app import create_app
from qualify.bootstrap import SERVICE
from qualify.models import QueuedLead, infra
from qualify.settings import QualifySettings
from shared.auth import store_token
from shared.db.migrate import upgrade
from shared.db.session import session_scope
from shared.runtime import Runtime

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://vo:vo@127.0.0.1:5432/postgres"
)
SIZES = (1_000, 100_000)
OPERATORS = 20
LIST_REQUESTS = 300
DEEP_PAGES = 20
CLAIMS = 400
ROUNDS = 5
SOURCES = ("leboncoin", "lacentrale", "facebook", "email")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    name = f"bench_qualify_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(ADMIN_URL), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_dsn(ADMIN_URL), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def seed(runtime: Runtime[Any], count: int) -> None:
    rng = random.Random(count)
    base = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for index in range(count):
        received = base - timedelta(seconds=rng.randrange(0, 30 * 24 * 3600))
        rows.append(
            {
                "lead_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "status": "waiting",
                "is_open": True,
                "kind": "enquiry",
                "source": SOURCES[index % len(SOURCES)],
                "received_at": received,
                "due_at": received + timedelta(minutes=15),
                "full_name": "Bench Lead",
                "phone": f"+3361{index:07d}",
                "email": None,
                "ad_ref": f"AD-{index}",
                "message": None,
                "enqueued_at": received,
                "attempt_count": 0,
                "unanswered_count": 0,
            }
        )
    for start in range(0, count, 10_000):
        async with session_scope(runtime.session_factory) as session:
            await session.execute(insert(QueuedLead), rows[start : start + 10_000])
    async with runtime.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE queued_lead"))


async def plan_nodes(runtime: Runtime[Any]) -> list[str]:
    """The node types of the queue query's plan (first page, with the claim condition)."""
    query = text(
        "EXPLAIN (FORMAT JSON) SELECT * FROM queued_lead WHERE is_open = true AND "
        "(claim_expires_at IS NULL OR claim_expires_at <= now()) "
        "AND (available_at IS NULL OR available_at <= now()) "
        "ORDER BY queue_rank, due_at, lead_id LIMIT 51"
    )
    async with runtime.engine.connect() as connection:
        raw = (await connection.execute(query)).scalar_one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return nodes


@dataclass
class Env:
    size: int
    runtime: Runtime[Any]
    clients: list[httpx.AsyncClient]
    list_ms: list[float] = field(default_factory=list)
    deep_ms: list[float] = field(default_factory=list)
    claim_s: float = 0.0
    claims: int = 0
    cycle_s: float = 0.0
    cycles: int = 0


@asynccontextmanager
async def environment(size: int) -> AsyncIterator[Env]:
    """A fresh database with ``size`` waiting leads and the API on it, with 20 operators."""
    async with fresh_database() as url:
        await asyncio.to_thread(upgrade, SERVICE.migrations, url)
        settings = QualifySettings(database_url=url, log_level="WARNING")
        app = create_app(settings, clock=lambda: datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
        async with app.router.lifespan_context(app):
            runtime: Runtime[Any] = app.state.runtime
            await seed(runtime, size)
            tokens = [f"vo_bench-{index}-{uuid.uuid4().hex}" for index in range(OPERATORS)]
            async with session_scope(runtime.session_factory) as session:
                for index, token in enumerate(tokens):
                    await store_token(
                        session, infra.api_token, token=token, name=f"op{index}", roles=["operator"]
                    )
            transport = httpx.ASGITransport(app=app)
            clients = [
                httpx.AsyncClient(
                    transport=transport,
                    base_url="http://qualify.bench",
                    headers={"Authorization": f"Bearer {token}"},
                )
                for token in tokens
            ]
            try:
                for _ in range(20):  # warm-up
                    (await clients[0].get("/v1/queue", params={"limit": 50})).raise_for_status()
                yield Env(size, runtime, clients)
            finally:
                for client in clients:
                    await client.aclose()


async def list_round(env: Env) -> None:
    for index in range(LIST_REQUESTS // ROUNDS):
        params: dict[str, str | int] = {"limit": 50}
        if index % 3 == 0:
            params["source"] = "facebook"
        started = time.perf_counter()
        (await env.clients[0].get("/v1/queue", params=params)).raise_for_status()
        env.list_ms.append((time.perf_counter() - started) * 1000)


async def deep_round(env: Env) -> None:
    """Following the cursor: page 20 costs what page 1 costs (keyset, not OFFSET)."""
    cursor: str | None = None
    for page_number in range(DEEP_PAGES):
        page: dict[str, str | int] = {"limit": 50}
        if cursor:
            page["cursor"] = cursor
        started = time.perf_counter()
        response = await env.clients[1].get("/v1/queue", params=page)
        response.raise_for_status()
        if page_number:
            env.deep_ms.append((time.perf_counter() - started) * 1000)
        cursor = response.json()["next_cursor"]


async def claim_round(env: Env) -> None:
    """Every operator claims the next lead and keeps it."""
    per_operator = CLAIMS // ROUNDS // OPERATORS

    async def claim(operator: httpx.AsyncClient) -> None:
        for _ in range(per_operator):
            (await operator.post("/v1/queue/claim")).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(claim(operator) for operator in env.clients))
    env.claim_s += time.perf_counter() - started
    env.claims += per_operator * OPERATORS


async def cycle_round(env: Env) -> None:
    """The operators' real flow: claim the next lead, then close it (claims do not pile up)."""
    per_operator = CLAIMS // ROUNDS // OPERATORS

    async def work(operator: httpx.AsyncClient) -> None:
        for _ in range(per_operator):
            response = await operator.post("/v1/queue/claim")
            response.raise_for_status()
            lead_id = response.json()["lead_id"]
            closed = await operator.post(
                f"/v1/leads/{lead_id}/disqualification", json={"reason": "not_interested"}
            )
            closed.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(work(operator) for operator in env.clients))
    env.cycle_s += time.perf_counter() - started
    env.cycles += per_operator * OPERATORS


async def release_all(env: Env) -> None:
    async with session_scope(env.runtime.session_factory) as session:
        await session.execute(
            update(QueuedLead)
            .where(QueuedLead.claimed_by.is_not(None))
            .values(claimed_by=None, claimed_by_name=None, claimed_at=None, claim_expires_at=None)
        )


async def interleaved(envs: list[Env], step: Callable[[Env], Awaitable[None]]) -> None:
    """ROUNDS rounds, alternating the sizes' order: the machine's noise hits both alike."""
    for round_number in range(ROUNDS):
        for env in envs if round_number % 2 == 0 else list(reversed(envs)):
            await step(env)


async def run() -> str:
    async with AsyncExitStack() as stack:
        envs = [await stack.enter_async_context(environment(size)) for size in SIZES]
        await interleaved(envs, list_round)
        await interleaved(envs, deep_round)
        plans = [await plan_nodes(env.runtime) for env in envs]
        await interleaved(envs, claim_round)
        for env in envs:
            await release_all(env)
        await interleaved(envs, cycle_round)
    small, large = envs

    def figures(env: Env) -> dict[str, float]:
        return {
            "list_median": statistics.median(env.list_ms),
            "list_p95": statistics.quantiles(env.list_ms, n=20)[-1],
            "deep_median": statistics.median(env.deep_ms),
            "claims": env.claims / env.claim_s,
            "cycles": env.cycles / env.cycle_s,
        }

    a, b = figures(small), figures(large)
    rows = [
        ("queue listing, first page of 50, median (ms)", "list_median", False),
        ("queue listing, first page of 50, p95 (ms)", "list_p95", False),
        ("queue listing, pages 2-20 by cursor, median (ms)", "deep_median", False),
        (f"claim next, {OPERATORS} operators at once, claims kept (claims/s)", "claims", True),
        (f"claim next + disqualify, {OPERATORS} operators at once (leads/s)", "cycles", True),
    ]
    lines = [
        "## qualify: queue and claims with 1,000 vs 100,000 waiting leads (PostgreSQL)",
        "",
        f"Through the HTTP API in process (FastAPI, auth, one transaction per request). "
        f"{LIST_REQUESTS} first-page listings (a third filtered by source), {ROUNDS} walks of "
        f"{DEEP_PAGES} pages by cursor, {CLAIMS} claims of the next lead by {OPERATORS} "
        "concurrent operators who keep them (the queue steps over held claims, so this row "
        "depends on the claims held, the same for both sizes), then, claims released, "
        f"{CLAIMS} claim-and-disqualify cycles (the real flow). Each size has its own fresh, "
        f"analysed database; the two sizes are measured in {ROUNDS} alternating rounds so "
        "that the machine's noise hits both alike.",
        "",
        "| figure | 1,000 leads | 100,000 leads | ratio 100k / 1k |",
        "|---|---:|---:|---:|",
    ]
    for label, key, throughput in rows:
        ratio = b[key] / a[key] if a[key] else float("nan")
        note = " (throughput: 1.0 = flat)" if throughput else " (latency: 1.0 = flat)"
        lines.append(f"| {label} | {a[key]:.2f} | {b[key]:.2f} | {ratio:.2f}{note} |")
    lines += [
        "",
        f"Plan of the queue's first page with 100,000 leads: {' → '.join(plans[1])} "
        f"(1,000 leads: {' → '.join(plans[0])}); sequential scan of queued_lead: "
        f"{'none' if 'Seq Scan' not in plans[1] else 'YES'}.",
    ]
    return "\n".join(lines) + "\n"
