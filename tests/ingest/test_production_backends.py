"""Ingest on PostgreSQL and Kafka: every source publishes one ``lead.received.v1`` per lead, and
replays publish nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from shared.bus import build_bus
from shared.events import Envelope
from tests.ingest.conftest import IngestFactory
from tests.ingest.corpus import FIXTURES
from tests.ingest.test_api import ADF_TWO
from tests.ingest.test_facebook import MESSENGER, signed
from tests.support.infra import create_database, drop_database


@pytest.mark.postgres
@pytest.mark.kafka
async def test_sources_publish_once_on_postgres_and_kafka(
    ingest_service: IngestFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = await create_database()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    values = {
        "database_url": url,
        "bus": "kafka",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": prefix,
        "topic_partitions": 2,
    }
    try:
        async with ingest_service(worker=True, **values) as service:
            client = service.client
            email = (FIXTURES / "email" / "leboncoin_form_html_qp.eml").read_bytes()
            body, headers = signed(MESSENGER)
            lead_ids = set()
            for _ in range(2):  # the second round is a replay of everything
                answers = [
                    await client.post(
                        "/v1/sources/email",
                        content=email,
                        headers={"Content-Type": "message/rfc822"},
                    ),
                    await client.post(
                        "/v1/leads", content=ADF_TWO, headers={"Content-Type": "application/xml"}
                    ),
                    await client.post(
                        "/v1/sources/facebook/webhook", content=body, headers=headers
                    ),
                ]
                assert [a.status_code for a in answers] == [202, 202, 200]
                lead_ids |= {answer.json()["id"] for answer in answers}
            assert len(lead_ids) == 3

            bus = build_bus(service.settings)
            await bus.start()
            consumer = bus.consumer(group_id=f"check-{uuid.uuid4().hex[:6]}", topics=["vo.leads"])
            await consumer.start()
            seen: list[Envelope] = []
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline and len(seen) < 3:
                    for record in await consumer.poll(timeout_s=0.5, max_records=50):
                        seen.append(Envelope.from_message(record.value, record.headers))
                await asyncio.sleep(1.0)
                for record in await consumer.poll(timeout_s=1.0, max_records=50):
                    seen.append(Envelope.from_message(record.value, record.headers))
            finally:
                await consumer.stop()
                await bus.stop()
            assert sorted(envelope.subject or "" for envelope in seen) == sorted(lead_ids)
            assert {envelope.type for envelope in seen} == {"lead.received.v1"}
    finally:
        await drop_database(url)
