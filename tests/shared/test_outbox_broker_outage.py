"""The outbox across a real broker outage: Kafka is stopped, ingest keeps accepting leads (202);
once Kafka is back, every event is delivered and applied exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.bootstrap import SERVICE as INGEST
from qualify.models import QueuedLead, infra as qualify_infra
from shared.db import create_engine
from shared.settings import ServiceSettings
from tests.support.harness import eventually, migrate, run_app, run_system, run_worker

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "scripts" / "infra.sh"


def _infra(*args: str) -> None:
    env = {**os.environ, "KAFKA_KEEP_DATA": "1"}
    completed = subprocess.run(
        ["bash", str(INFRA), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def lead(n: int) -> dict[str, object]:
    return {
        "source": "api",
        "source_ref": f"outage-{n}",
        "contact": {"full_name": f"Prospect {n}", "phone": f"06 11 22 33 {n:02d}"},
        "vehicle": {"ad_ref": "AD-9"},
    }


async def _count(url: str, statement: object) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())  # type: ignore[call-overload]
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.broker_restart
async def test_leads_survive_a_kafka_outage(
    production_settings: dict[str, ServiceSettings],
) -> None:
    if os.environ.get("ALLOW_BROKER_RESTART") != "1":
        pytest.skip("stops the shared broker: set ALLOW_BROKER_RESTART=1 (make test and CI do)")
    ingest, qualify = production_settings["ingest"], production_settings["qualify"]
    queue_url = qualify.resolved_database_url()
    outbox = ingest.resolved_database_url()
    await migrate(ingest)
    async with run_system({"qualify": qualify}):
        async with run_app(ingest) as api, run_worker(ingest):
            first = await api.client.post("/v1/leads", json=lead(0))
            assert first.status_code == 202
            await eventually(
                lambda: _count(queue_url, select(func.count()).select_from(QueuedLead)),
                timeout_s=60,
            )

        # Broker down: the API still accepts, the outbox keeps every event.
        await asyncio.to_thread(_infra, "stop", "kafka")
        try:
            async with run_app(ingest) as api, run_worker(ingest):
                for n in range(1, 6):
                    response = await api.client.post("/v1/leads", json=lead(n))
                    assert response.status_code == 202, response.text
                table = INGEST.infra.outbox_event

                async def relay_tried() -> bool:
                    tried = await _count(
                        outbox,
                        select(func.count()).select_from(table).where(table.c.attempts > 0),
                    )
                    return tried == 5

                await eventually(relay_tried, timeout_s=90)
                assert await _count(outbox, select(func.count()).select_from(table)) == 5
        finally:
            await asyncio.to_thread(_infra, "start", "kafka")

        # Broker back: everything is delivered, and applied once.
        async with run_worker(ingest):
            table = INGEST.infra.outbox_event

            async def all_queued() -> bool:
                queued = await _count(queue_url, select(func.count()).select_from(QueuedLead))
                return queued == 6

            await eventually(all_queued, timeout_s=120)
            assert await _count(outbox, select(func.count()).select_from(table)) == 0
        await asyncio.sleep(1.0)  # give a duplicate delivery, if any, the time to show
        processed = qualify_infra.processed_event
        assert await _count(queue_url, select(func.count()).select_from(QueuedLead)) == 6
        assert await _count(queue_url, select(func.count()).select_from(processed)) == 6
