"""An operator's message is sent at once, not at the sender's next poll: the API commits it and
the worker's sender, in another runtime (its own connections, as in another process), is woken
through the database (PostgreSQL: the ``outgoing_message`` NOTIFY trigger; SQLite: the file's
``data_version``). The fallback poll is 30 s here: only the wake-up can make it fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from qualify.messages.compose import Composer
from qualify.messages.loops import SenderLoop, sender_wakeup
from qualify.models import infra
from qualify.settings import QualifySettings
from shared.db.session import wakeups_of
from shared.db.wakeup import ChangeListener
from shared.metrics import ServiceMetrics
from shared.runtime import Runtime
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.qualify.test_api import claimed
from tests.support.clock import Clock
from tests.support.fake_ovh import FakeOvh, serve_fake_ovh
from tests.support.harness import eventually


@asynccontextmanager
async def worker_sender(settings: QualifySettings, api: QualifyApi) -> AsyncIterator[None]:
    """The worker's sender and listener, on a runtime of their own."""
    runtime = await Runtime.open(
        settings, infra, ServiceMetrics("qualify"), role="worker", clock=api.clock
    )
    stop = asyncio.Event()
    sender = SenderLoop(runtime, Composer(settings, api.policy), sender_wakeup(runtime))
    listener = ChangeListener(settings.resolved_database_url(), wakeups_of(runtime.session_factory))
    tasks = [asyncio.create_task(sender.run(stop)), asyncio.create_task(listener.run(stop))]
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        await asyncio.sleep(0.5)  # the sender's first pass found nothing: it waits (30 s)
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        # The sender gave back what its claimed writes held between messages.
        pool = runtime.engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            assert pool.checkedout() == 0
        await runtime.close()


@pytest.fixture
async def ovh() -> AsyncIterator[FakeOvh]:
    async with serve_fake_ovh() as fake:
        yield fake


async def test_an_operator_message_wakes_the_worker_sender(
    database_url: str, tmp_path: Path, ovh: FakeOvh
) -> None:
    settings = qualify_settings(
        database_url,
        tmp_path,
        message_dealer_name="Garage Dupont",
        message_poll_interval_s=30.0,
        **ovh.settings().model_dump(),
    )
    async with open_api(settings, Clock()) as api, worker_sender(settings, api):
        lead = await api.add_lead()
        alice = await claimed(api, "alice", lead)
        posted = time.monotonic()
        response = await alice.post(
            f"/v1/leads/{lead}/messages", json={"channel": "sms", "text": "Disponible samedi."}
        )
        assert response.status_code == 201, response.text
        message_id = response.json()["message"]["id"]

        async def handed_over() -> bool:
            return [job["tag"] for job in ovh.jobs] == [message_id]

        await eventually(handed_over, timeout_s=10)
        elapsed = time.monotonic() - posted
        assert elapsed < 5, f"the message waited {elapsed:.1f} s (the poll is 30 s)"
