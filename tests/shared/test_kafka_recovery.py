"""A relay recovers from a Kafka stop and restart by itself (issue 11, item 8): the producer that
failed a publish is replaced (an idempotent producer could otherwise stay wedged on
``OutOfOrderSequenceNumber``), ``/readyz`` says the bus cannot publish while events wait, and
every event is on the topic once the broker is back. Stops and restarts the test broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from shared.bus.kafka import KafkaBus
from shared.events import Topics
from shared.metrics import ServiceMetrics
from shared.outbox import OutboxRelay
from tests.support.harness import eventually
from tests.support.messaging import Harness, MessagingSettings, infra, messaging_harness
from tests.support.probe_app import probe_client

ROOT = Path(__file__).resolve().parents[2]
OUTBOX = infra.outbox_event


def kafka(action: str) -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), action, "kafka"],
        cwd=ROOT,
        env={**os.environ, "KAFKA_KEEP_DATA": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


async def stage(harness: Harness, numbers: range) -> None:
    async with harness.sessions() as session:
        await session.execute(
            insert(OUTBOX),
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "lead.received.v1",
                    "topic": Topics.LEADS,
                    "key": f"lead-{n}".encode(),
                    "value": json.dumps({"n": n}).encode(),
                    "headers": [],
                    "subject": f"lead-{n}",
                    "created_at": datetime.now(UTC),
                    "attempts": 0,
                }
                for n in numbers
            ],
        )
        await session.commit()


async def outbox(harness: Harness, *, failed: bool = False) -> int:
    statement = select(func.count()).select_from(OUTBOX)
    if failed:
        statement = statement.where(OUTBOX.c.attempts > 0)
    async with harness.sessions() as session:
        return int(await session.scalar(statement) or 0)


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def on_topic(harness: Harness) -> set[int]:
    reader = harness.bus.consumer(group_id=f"check-{uuid.uuid4().hex[:6]}", topics=[Topics.LEADS])
    await reader.start()
    seen: set[int] = set()
    try:

        async def all_six() -> bool:
            for record in await reader.poll(timeout_s=1.0, max_records=100):
                seen.add(int(json.loads(record.value or b"{}")["n"]))
            return len(seen) >= 6

        await eventually(all_six, timeout_s=60)
    finally:
        await reader.stop()
    return seen


@pytest.mark.kafka
@pytest.mark.broker_restart
async def test_a_relay_recovers_from_a_broker_restart_by_itself(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    if os.environ.get("ALLOW_BROKER_RESTART") != "1":
        pytest.skip("stops the shared broker: set ALLOW_BROKER_RESTART=1 (make test and CI do)")
    settings = MessagingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}",
        bus="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=1,
        kafka_publish_timeout_s=5.0,
    )
    async with messaging_harness(settings) as harness, probe_client(settings, []) as api:
        bus = harness.bus
        assert isinstance(bus, KafkaBus)
        relay = OutboxRelay(
            service="messaging-test",
            session_factory=harness.sessions,
            table=OUTBOX,
            bus=bus,
            metrics=ServiceMetrics("messaging-test"),
            poll_interval_s=0.1,
        )
        stop = asyncio.Event()
        relaying = asyncio.create_task(relay.run(stop))
        try:
            await stage(harness, range(3))
            await eventually(lambda: _empty(harness), timeout_s=60)
            assert (await readiness(api))[0] == 200
            first_producers = bus.producers_started

            await asyncio.to_thread(kafka, "stop")
            try:
                await stage(harness, range(3, 6))
                await eventually(lambda: outbox(harness, failed=True), timeout_s=90)
                status, body = await readiness(api)
                assert status == 503
                assert body["checks"]["bus"].startswith("cannot publish"), body
                assert bus.publish_failure is not None
            finally:
                await asyncio.to_thread(kafka, "start")

            # Back: the relay drains on its own, with a producer started after the failure.
            await eventually(lambda: _empty(harness), timeout_s=120, interval_s=0.5)
            assert bus.producers_started > first_producers
            assert bus.publish_failure is None

            async def ready() -> bool:
                return (await readiness(api))[0] == 200

            await eventually(ready, timeout_s=30, interval_s=0.5)
            assert await on_topic(harness) == set(range(6))
        finally:
            stop.set()
            await relaying


async def _empty(harness: Harness) -> bool:
    return await outbox(harness) == 0
