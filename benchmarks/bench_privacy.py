"""GDPR figures: end-to-end erasure latency across the four services, and the retention run over
100,000 and 1,000,000 synthetic clients with its peak memory (it must stay flat: the run walks
clients in keyset batches, one transaction each).

Erasure: the four services in one process on the embedded default (SQLite + embedded bus), their
workers polling as in production; latency = POST of the request → status ``completed`` (every
service answered). Retention: crm's database alone (SQLite), 1 % of the clients past the 3-year
limit; the real run (not dry) creates their erasure requests; Python heap peak from tracemalloc.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from crm.bootstrap import SERVICE as CRM
from crm.models import Client, TimelineEntry, infra
from crm.privacy.retention import run_retention
from shared.clock import utcnow
from shared.db import create_engine, make_session_factory
from shared.db.migrate import upgrade
from shared.outbox import Outbox, event_source
from tests.support.harness import SERVICES, eventually, run_system, settings_for

ERASURES = 20
SIZES = (100_000, 1_000_000)
DUE_SHARE = 0.01
BATCH = 5_000


async def erasure_latency() -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        settings = {
            name: settings_for(
                name,
                database_url=f"sqlite+aiosqlite:///{root / name}.db",
                embedded_bus_path=root / "bus.db",
                log_level="WARNING",
            )
            for name in SERVICES
        }
        latencies = []
        async with run_system(settings) as system:
            for n in range(ERASURES):
                phone = f"+3361000{n:04d}"
                await system.ingest.post(
                    "/v1/leads",
                    json={
                        "source": "api",
                        "source_ref": f"bench-{n}",
                        "contact": {"full_name": f"Bench {n}", "phone": phone},
                    },
                )

                async def client_id(phone: str = phone) -> str | None:
                    found = await system.crm.get("/v1/clients", params={"phone": phone})
                    items = found.json()["items"]
                    return str(items[0]["id"]) if items else None

                cid = await eventually(client_id, timeout_s=60)
                started = time.perf_counter()
                created = await system.crm.post(
                    "/v1/privacy/erasure-requests", json={"client_id": cid}
                )
                request_id = created.json()["id"]

                async def completed(request_id: str = request_id) -> bool:
                    body = (
                        await system.crm.get(f"/v1/privacy/erasure-requests/{request_id}")
                    ).json()
                    return bool(body["status"] == "completed")

                await eventually(completed, timeout_s=60, interval_s=0.01)
                latencies.append(time.perf_counter() - started)
        return latencies


async def retention_run(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'crm.db'}"
        await asyncio.to_thread(upgrade, CRM.migrations, url)
        engine = create_engine(url)
        now = datetime.now(UTC)
        old, recent = now - timedelta(days=4 * 365), now - timedelta(days=30)
        due_every = int(1 / DUE_SHARE)
        loaded = time.perf_counter()
        async with engine.begin() as connection:
            for start in range(0, size, BATCH):
                clients, entries = [], []
                for n in range(start, min(start + BATCH, size)):
                    client_id, lead_id = str(uuid.uuid4()), str(uuid.uuid4())
                    last = old if n % due_every == 0 else recent
                    clients.append(
                        {
                            "id": client_id,
                            "full_name": f"Client {n}",
                            "phone": f"+336{n:08d}",
                            "email": None,
                            "first_name": None,
                            "last_name": None,
                            "created_at": last,
                            "last_contact_at": last,
                        }
                    )
                    entries.append(
                        {
                            "id": str(uuid.uuid4()),
                            "client_id": client_id,
                            "lead_id": lead_id,
                            "kind": "lead.received",
                            "occurred_at": last,
                            "source": "api",
                            "details": {},
                        }
                    )
                await connection.execute(insert(Client), clients)
                await connection.execute(insert(TimelineEntry), entries)
        load_s = time.perf_counter() - loaded
        tracemalloc.start()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        await run_retention(
            make_session_factory(engine),
            Outbox(infra.outbox_event, event_source("crm")),
            clock=utcnow,
            retention=timedelta(days=3 * 365),
            dry_run=False,
            trigger="manual",
            batch_size=500,
            hmac_key=b"bench",
        )
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await engine.dispose()
        return {
            "size": size,
            "due": size // due_every,
            "load_s": load_s,
            "run_s": elapsed,
            "peak_mib": peak / 2**20,
        }


async def run() -> str:
    latencies = await erasure_latency()
    runs = [await retention_run(size) for size in SIZES]
    small, large = runs
    ratio = large["peak_mib"] / small["peak_mib"]
    rows = "\n".join(
        f"| {r['size']:,} | {r['due']:,} | {r['run_s']:.1f} | {r['peak_mib']:.1f} |" for r in runs
    )
    quantiles = statistics.quantiles(latencies, n=20)
    return f"""## Privacy: erasure latency and retention memory

End-to-end erasure ({ERASURES} clients, one at a time, the four services in one process on the
embedded default): request → every service answered → `completed`.

| p50 s | p95 s | max s |
|---:|---:|---:|
| {statistics.median(latencies):.2f} | {quantiles[18]:.2f} | {max(latencies):.2f} |

Retention run (crm on SQLite, {DUE_SHARE:.0%} of the clients past 3 years; the real run creates
their erasure requests; keyset batches of 500, one transaction each). Peak = Python heap
(tracemalloc) during the run.

| clients | due | run s | peak MiB |
|---:|---:|---:|---:|
{rows}

Peak at 1,000,000 / peak at 100,000: **{ratio:.2f}x** (target at most 1.5x).
"""
