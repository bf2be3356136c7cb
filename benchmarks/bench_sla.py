"""SLA summary on PostgreSQL over 100,000 and over 1,000,000 leads (the larger must cost at most
10x the smaller), and the summary by every grouping at 1,000,000 leads from the API's columnar
copy of the facts (issue 12's bar: 0.5 s) beside the database's own aggregates, with what the
copy costs: its first load, its refresh after changes, its memory.

Each size gets its own fresh database (migrated to head, ``sla_fact`` bulk-loaded with COPY,
analysed). The requests go through the real crm API in process (httpx ASGI transport), so the
figures include FastAPI, authentication and the unit of work. One year of leads; every query
covers the whole year (the worst case: every row of the table is in range). DSN:
``TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from crm.bootstrap import SERVICE
from crm.settings import CrmSettings
from crm.sla.fact_copy.copy import SlaFactCopy
from crm.sla.models import sla_fact
from crm.sla.stages import STAGES
from shared.db.migrate import upgrade

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://vo:vo@127.0.0.1:5432/postgres"
)
SIZES = (100_000, 1_000_000)
ROUNDS = 3
TOKEN = "vo_bench-sla-every-role"
SOURCES = ("leboncoin", "lacentrale", "facebook", "email", "adf", "api")
SITES = tuple(f"site-{n:02d}" for n in range(40))
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
QUERIES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("summary", "/v1/sla/summary", {}),
    ("summary by site", "/v1/sla/summary", {"group_by": "site"}),
    ("summary by seller", "/v1/sla/summary", {"group_by": "seller"}),
    ("summary by operator", "/v1/sla/summary", {"group_by": "operator"}),
    ("summary by source", "/v1/sla/summary", {"group_by": "source"}),
    ("summary by path", "/v1/sla/summary", {"group_by": "path"}),
    ("summary, one source", "/v1/sla/summary", {"source": "leboncoin"}),
    ("funnel by source and site", "/v1/sla/funnel", {}),
    ("breaches, first page", "/v1/sla/breaches", {"limit": "100"}),
    ("daily series, the year", "/v1/sla/series", {}),
    ("daily series by source", "/v1/sla/series", {"by": "source"}),
    ("alerts feed, first page", "/v1/alerts", {}),  # open leads now: from/to not read
)
RANGE = {"from": "2025-01-01T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    name = f"bench_sla_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(ADMIN_URL), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(_dsn(ADMIN_URL), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _rows(count: int, seed: int) -> list[tuple[Any, ...]]:
    """Synthetic facts: received over 2025, each stage reached by a shrinking share of leads,
    durations log-normal in business seconds (wall time about 3x)."""
    generator = random.Random(seed)
    columns = [column.name for column in sla_fact.columns]
    index = {name: position for position, name in enumerate(columns)}
    sellers = [f"seller-{n:03d}" for n in range(400)]
    operators = [f"op-{n:02d}" for n in range(60)]
    now = datetime(2026, 1, 15, tzinfo=UTC)
    stages = {stage.name: stage for stage in STAGES}
    chain = [
        (
            depth,
            name,
            index[f"{name}_at"],
            index[stages[name].business_column],
            index[stages[name].wall_column],
            index[stages[name].due_column],
            index[stages[name].risk_column],
        )
        for depth, name in enumerate(
            ("first_attempt", "qualified", "offered", "accepted", "seller_contact")
        )
    ]
    i_lead, i_source, i_updated, i_received = (
        index["lead_id"],
        index["source"],
        index["updated_at"],
        index["received_at"],
    )
    i_operator, i_site, i_seller = index["operator_id"], index["site"], index["seller_id"]
    i_reached = (index["reached_at"], index["reached_business_s"], index["reached_wall_s"])
    i_won = (index["won_at"], index["closed_at"], index["won_business_s"], index["won_wall_s"])
    i_outcome = index["outcome"]
    i_provisional = index["calendar_provisional"]  # NOT NULL: COPY does not apply the default
    fifteen, twelve, three_days = timedelta(minutes=15), timedelta(minutes=12), timedelta(days=3)
    rows = []
    year_s = 365 * 86400
    rand, choice, lognormal = generator.random, generator.choice, generator.lognormvariate
    for number in range(count):
        row: list[Any] = [None] * len(columns)
        received = YEAR_START + timedelta(seconds=int(rand() * year_s))
        row[i_lead] = f"{seed:02d}-{number:012d}"
        row[i_source] = choice(SOURCES)
        row[i_updated] = now
        row[i_received] = received
        row[i_provisional] = False
        cursor = received
        for depth, _name, i_at, i_business, i_wall, i_due, i_risk in chain:
            if rand() > (0.97 if depth == 0 else 0.85):
                row[i_due] = cursor + fifteen
                row[i_risk] = cursor + twelve
                break
            business = int(lognormal(6.3, 1.1))
            cursor = cursor + timedelta(seconds=business * 3)
            row[i_at], row[i_business], row[i_wall] = cursor, business, business * 3
            if depth == 0:
                row[i_operator] = choice(operators)
                if rand() < 0.7:
                    row[i_reached[0]], row[i_reached[1]], row[i_reached[2]] = (
                        cursor,
                        business,
                        business * 3,
                    )
            elif depth == 1:
                row[i_site] = choice(SITES)
            elif depth == 2:
                row[i_seller] = choice(sellers)
            elif depth == 4 and rand() < 0.3:
                won = cursor + three_days
                row[i_won[0]], row[i_won[1]] = won, won
                row[i_won[2]], row[i_won[3]] = int(lognormal(9.5, 0.8)), 3 * 86400
                row[i_outcome] = "won"
        rows.append(tuple(row))
    return rows


async def _load(url: str, count: int) -> float:
    """COPY in chunks (the next chunk is generated while the server stores the current one),
    with the indexes built once at the end."""
    await asyncio.to_thread(upgrade, SERVICE.migrations, url)
    started = time.perf_counter()
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        definitions = [
            record["indexdef"]
            for record in await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sla_fact'"
                " AND indexname <> 'pk_sla_fact'"
            )
        ]
        for record in await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'sla_fact'"
            " AND indexname <> 'pk_sla_fact'"
        ):
            await connection.execute(f'DROP INDEX "{record["indexname"]}"')
        columns = [column.name for column in sla_fact.columns]
        chunk = 50_000
        chunks = [
            (offset // chunk, min(chunk, count - offset)) for offset in range(0, count, chunk)
        ]
        pending = asyncio.create_task(asyncio.to_thread(_rows, chunks[0][1], chunks[0][0]))
        for position in range(len(chunks)):
            rows = await pending
            if position + 1 < len(chunks):
                seed, size = chunks[position + 1]
                pending = asyncio.create_task(asyncio.to_thread(_rows, size, seed))
            await connection.copy_records_to_table("sla_fact", records=rows, columns=columns)
        for definition in definitions:
            await connection.execute(definition)
        await connection.execute("VACUUM ANALYZE sla_fact")
    finally:
        await connection.close()
    return time.perf_counter() - started


SUMMARIES = tuple(query for query in QUERIES if query[1] == "/v1/sla/summary")
CHANGED = 1_000  # facts changed before the "after changes" request


@asynccontextmanager
async def _client(url: str, *, columnar_copy: bool) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = CrmSettings(
        database_url=url,
        dev_token=SecretStr(TOKEN),
        log_level="WARNING",
        sla_columnar_copy=columnar_copy,
    )
    app = SERVICE.create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://crm.bench",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=300,
        ) as client,
    ):
        yield app, client


async def _timed(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.get(path, params={**RANGE, **params})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


async def _medians(
    client: httpx.AsyncClient, queries: tuple[tuple[str, str, dict[str, str]], ...]
) -> dict[str, float]:
    timings: dict[str, float] = {}
    for name, path, params in queries:
        await _timed(client, path, params)  # a warm-up
        timings[name] = statistics.median(
            [await _timed(client, path, params) for _ in range(ROUNDS)]
        )
    return timings


async def _change_facts(url: str, count: int) -> None:
    """``count`` facts changed as the worker changes them (one row each)."""
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        await connection.execute(
            "UPDATE sla_fact SET updated_at = now(),"
            " seller_contact_business_s = coalesce(seller_contact_business_s, 0) + 1,"
            " seller_contact_wall_s = coalesce(seller_contact_wall_s, 0) + 1"
            " WHERE lead_id IN"
            " (SELECT lead_id FROM sla_fact ORDER BY random() LIMIT $1)",
            count,
        )
    finally:
        await connection.close()


async def _measure(url: str) -> dict[str, float]:
    """Every query through the default API (the columnar copy, loading from the start),
    the copy's refresh after ``CHANGED`` facts changed, then the summaries from the database's
    aggregates (the copy turned off) for comparison."""
    timings: dict[str, float] = {}
    async with _client(url, columnar_copy=True) as (app, client):
        timings["first summary (waits for the copy's load)"] = await _timed(
            client, "/v1/sla/summary", {}
        )
        timings.update(await _medians(client, QUERIES))
        await _change_facts(url, CHANGED)
        timings[f"summary after {CHANGED:,} facts changed"] = await _timed(
            client, "/v1/sla/summary", {}
        )
        copy = app.state.runtime.component(SlaFactCopy)
        columns = copy.columns
        timings["copy MB"] = (
            columns.present.nbytes + sum(array.nbytes for array in columns.arrays.values())
        ) / 1e6
    async with _client(url, columnar_copy=False) as (_app, client):
        for name, value in (await _medians(client, SUMMARIES)).items():
            timings[f"db: {name}"] = value
    return timings


async def run() -> str:
    loads: dict[int, float] = {}
    results: dict[int, dict[str, float]] = {}
    for size in SIZES:
        async with fresh_database() as url:
            loads[size] = await _load(url, size)
            results[size] = await _measure(url)
    small, large = SIZES
    lines = [
        "## SLA summary: 100,000 vs 1,000,000 leads (PostgreSQL)",
        "",
        "`benchmarks/bench_sla.py`. One year of synthetic SLA facts per database (COPY, then "
        "VACUUM ANALYZE); each request covers the whole year, through the crm API in process "
        f"(FastAPI, auth, unit of work). Median of {ROUNDS} requests after a warm-up. The "
        "summaries come from the API's columnar copy of the facts (crm/sla/fact_copy/, "
        "brought up to date before each request); the issue's bars: the larger at most 10x the "
        "smaller, and every summary at 1,000,000 leads within 0.5 s.",
        "",
        f"| request | {small:,} leads (ms) | {large:,} leads (ms) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, _path, _params in QUERIES:
        a, b = results[small][name], results[large][name]
        bar = ""
        if name in {query[0] for query in SUMMARIES}:
            bar = " (≤ 500 ms: met)" if b <= 0.5 else " (≤ 500 ms: NOT met)"
        lines.append(f"| {name} | {a * 1000:.1f} | {b * 1000:.1f}{bar} | {b / a:.1f}x |")
    lines += [
        "",
        "The same summaries from the database's own aggregates (`CRM_SLA_COLUMNAR_COPY=false`, "
        "the path before the copy), same run:",
        "",
        f"| request | {small:,} leads (ms) | {large:,} leads (ms) | copy vs database at "
        f"{large:,} |",
        "|---|---:|---:|---:|",
    ]
    for name, _path, _params in SUMMARIES:
        a, b = results[small][f"db: {name}"], results[large][f"db: {name}"]
        copied = results[large][name]
        lines.append(f"| {name} | {a * 1000:.1f} | {b * 1000:.1f} | {b / copied:.1f}x faster |")
    first = "first summary (waits for the copy's load)"
    after = f"summary after {CHANGED:,} facts changed"
    lines += [
        "",
        "What the copy costs, per API process: its first load (started with the API; the first "
        "summary request, sent at once, waits for it: "
        f"{results[small][first]:.1f} s for {small:,} facts, {results[large][first]:.1f} s for "
        f"{large:,}); a summary right after {CHANGED:,} facts changed (the refresh reads those "
        f"rows alone): {results[small][after] * 1000:.0f} ms and "
        f"{results[large][after] * 1000:.0f} ms; memory: {results[small]['copy MB']:.0f} MB and "
        f"{results[large]['copy MB']:.0f} MB of arrays.",
        "",
        f"Bulk load (COPY + VACUUM ANALYZE): {loads[small]:.1f} s for {small:,}, "
        f"{loads[large]:.1f} s for {large:,}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(asyncio.run(run()))  # noqa: T201
