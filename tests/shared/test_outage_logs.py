"""A broker outage does not flood the logs (issue 11, item 8): a real ingest worker process on
Kafka, with an event waiting in its outbox, writes a bounded number of lines while the broker is
stopped (it once wrote 173,000 in 31 s). Repeats are summarised with a ``suppressed`` count."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from ingest.bootstrap import SERVICE as INGEST
from shared.db import create_engine
from shared.events import Topics
from shared.log_limit import RepeatLimiter

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = 20.0
MAX_LINES_IN_OUTAGE = 200


def test_repeats_pass_a_few_times_per_window_then_are_counted() -> None:
    now = [0.0]
    limiter = RepeatLimiter(burst=2, window_s=10.0, clock=lambda: now[0])
    assert [limiter.admit("k") for _ in range(5)] == [0, 0, None, None, None]
    assert limiter.admit("other") == 0  # keys are independent
    now[0] = 10.5
    assert limiter.admit("k") == 3  # the first line of the next window tells what was held
    assert limiter.admit("k") == 0
    assert limiter.admit("k") is None


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


async def stage_raw_event(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(INGEST.infra.outbox_event).values(
                    event_id=str(uuid.uuid4()),
                    event_type="lead.received.v1",
                    topic=Topics.LEADS,
                    key=b"lead-outage",
                    value=b"{}",
                    headers=[],
                    subject="lead-outage",
                    created_at=datetime.now(UTC),
                    attempts=0,
                )
            )
    finally:
        await engine.dispose()


def lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


@pytest.mark.kafka
@pytest.mark.broker_restart
async def test_a_worker_writes_few_lines_during_a_broker_outage(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    if os.environ.get("ALLOW_BROKER_RESTART") != "1":
        pytest.skip("stops the shared broker: set ALLOW_BROKER_RESTART=1 (make test and CI do)")
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    env = {
        **os.environ,
        "INGEST_DATABASE_URL": url,
        "INGEST_BUS": "kafka",
        "INGEST_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INGEST_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "INGEST_TOPIC_PARTITIONS": "1",
        "INGEST_KAFKA_PUBLISH_TIMEOUT_S": "3",
        "INGEST_LOG_JSON": "true",
    }
    python = sys.executable
    migrate = [python, "-m", "ingest", "migrate"]
    await asyncio.to_thread(subprocess.run, migrate, env=env, check=True, timeout=120)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = await asyncio.create_subprocess_exec(
            python, "-m", "ingest", "worker", env=env, stdout=log_file, stderr=log_file
        )
        try:
            deadline = time.monotonic() + 60
            while not any("worker.started" in line for line in lines(log_path)):
                assert worker.returncode is None, lines(log_path)[-20:]
                assert time.monotonic() < deadline, "the worker did not start"
                await asyncio.sleep(0.2)
            await asyncio.sleep(3.0)  # consumers join their groups

            await asyncio.to_thread(kafka, "stop")
            try:
                before = len(lines(log_path))
                await stage_raw_event(url)  # the relay has something to fail on
                await asyncio.sleep(OUTAGE_S)
                during = lines(log_path)[before:]
            finally:
                await asyncio.to_thread(kafka, "start")
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 60)
    events = [json.loads(line) for line in during if line.startswith("{")]
    assert any(event.get("event") == "outbox.publish_failed" for event in events), during[-20:]
    assert len(during) <= MAX_LINES_IN_OUTAGE, (
        f"{len(during)} lines in a {OUTAGE_S:.0f} s outage",
        during[-20:],
    )
    assert any(event.get("suppressed") for event in events), "repeats are summarised"
