"""An erasure request never waits silently (issue 11, item 1): asked at least
``CRM_ERASURE_REASK_AFTER_S`` ago and still missing answers, it is asked again, through crm's
outbox onto the real bus, of the services that have not answered (the others ignore the re-ask),
with an alert: ``crm_erasure_reasks_total`` and ``crm_erasures_waiting`` by service name, and a
log line naming the request and the services only. The time is crm's test clock."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from crm.privacy.metrics import ErasureMetrics
from crm.privacy.reask import reask_pass
from crm.privacy.service import erase_client_data, record_completion
from crm.settings import CrmSettings
from crm.worker import consumers
from shared.db import session_scope
from shared.events import Envelope, Topics
from shared.events.payloads import ContactV1
from shared.events.privacy import ErasureCompletedV1
from shared.jobs import PeriodicJob
from shared.outbox import OutboxRelay
from shared.privacy import ERASURE_COMPLETED, ERASURE_REQUESTED, erasure_handler
from shared.runtime import Runtime
from tests.crm.conftest import CrmFactory, receive, runtime_of
from tests.support.clock import Clock
from tests.support.harness import RunningService
from tests.support.logs import CapturedLogs

AFTER_S = 300
NAME = "Léa Martin"
PHONE = "+33611223344"


async def _answer(
    runtime: Runtime[CrmSettings], request_id: str, client_id: str, service: str
) -> None:
    """A service's answer, recorded as crm's completion handler records it."""
    answer = ErasureCompletedV1(
        request_id=request_id,
        client_id=client_id,
        service=service,
        erased={"lead": 1},
        completed_at=runtime.clock(),
    )
    async with session_scope(runtime.session_factory) as session:
        await record_completion(session, answer, now=runtime.clock())


async def _publish(runtime: Runtime[CrmSettings]) -> int:
    """crm's outbox relay, once: what was staged goes onto the bus."""
    relay = OutboxRelay(
        service="crm",
        session_factory=runtime.session_factory,
        table=runtime.infra.outbox_event,
        bus=runtime.bus,
        metrics=runtime.metrics,
    )
    return await relay.relay_once()


async def _privacy_records(runtime: Runtime[CrmSettings]) -> list[Envelope]:
    consumer = runtime.bus.consumer(group_id=f"reask-{uuid.uuid4()}", topics=[Topics.PRIVACY])
    await consumer.start()
    try:
        found: list[Envelope] = []
        while records := await consumer.poll(timeout_s=0.3, max_records=100):
            found += [Envelope.from_message(r.value, r.headers) for r in records]
        return found
    finally:
        await consumer.stop()


def _sample(registry: CollectorRegistry, name: str, waiting_on: str) -> float:
    value = registry.get_sample_value(name, {"service": "crm", "waiting_on": waiting_on})
    return 0.0 if value is None else value


async def _request(service: RunningService) -> tuple[str, str]:
    client_id = await receive(service, ContactV1(full_name=NAME, phone=PHONE))
    created = await service.client.post(
        "/v1/privacy/erasure-requests", json={"client_id": client_id}
    )
    assert created.status_code == 202, created.text
    return str(created.json()["id"]), client_id


async def test_a_request_waiting_on_services_is_asked_again_of_them_with_an_alert(
    crm: CrmFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    logs = CapturedLogs(capsys)
    async with crm.running(clock=clock, erasure_reask_after_s=AFTER_S) as system:
        service = system.services["crm"]
        runtime = runtime_of(service)
        registry = CollectorRegistry()
        metrics = ErasureMetrics("crm", registry)
        request_id, client_id = await _request(service)
        await _answer(runtime, request_id, client_id, "ingest")
        await _answer(runtime, request_id, client_id, "qualify")

        clock.advance(seconds=AFTER_S - 1)
        assert await reask_pass(runtime, metrics) == []
        assert _sample(registry, "crm_erasures_waiting", "dispatch") == 0

        clock.advance(seconds=1)
        [reask] = await reask_pass(runtime, metrics)
        assert (reask.request_id, reask.services, reask.asks) == (
            request_id,
            ("dispatch", "crm"),
            2,
        )
        for waiting_on, expected in {"ingest": 0, "qualify": 0, "dispatch": 1, "crm": 1}.items():
            assert _sample(registry, "crm_erasures_waiting", waiting_on) == expected
            assert _sample(registry, "crm_erasure_reasks_total", waiting_on) == expected
        [line] = [e for e in logs.events if e.get("event") == "privacy.erasure_reasked"]
        assert line["level"] == "warning"
        assert line["request_id"] == request_id
        assert line["waiting_on"] == ["dispatch", "crm"]
        assert NAME not in str(line)
        assert "611223344" not in str(line)
        assert client_id not in str(line)

        # Not again before another period: one re-ask per period.
        clock.advance(seconds=AFTER_S - 1)
        assert await reask_pass(runtime, metrics) == []

        # The re-ask goes onto the bus through crm's outbox, after the request itself.
        assert await _publish(runtime) == 2
        asked = [e for e in await _privacy_records(runtime) if e.type == ERASURE_REQUESTED]
        assert [e.data["request_id"] for e in asked] == [request_id, request_id]
        assert [e.data.get("services") for e in asked] == [None, ["dispatch", "crm"]]
        assert {e.subject for e in asked} == {client_id}

        # A service that answered ignores the re-ask; one that had not erases and answers.
        async with session_scope(runtime.session_factory) as session:
            for name in ("qualify", "crm"):
                handler = erasure_handler(
                    service=name,
                    outbox=runtime.infra.outbox_event,
                    erased_subjects=runtime.infra.erased_subject,
                    erase=erase_client_data,
                )
                await handler(session, asked[1])
        table = runtime.infra.outbox_event
        async with session_scope(runtime.session_factory) as session:
            staged = (await session.execute(select(table))).all()
        assert [row.event_type for row in staged] == [ERASURE_COMPLETED]
        headers = [(name, value.encode()) for name, value in staged[0].headers]
        answer = Envelope.from_message(staged[0].value, headers)
        assert answer.data["service"] == "crm"
        await _answer(runtime, request_id, client_id, "crm")
        await _answer(runtime, request_id, client_id, "dispatch")

        clock.advance(seconds=AFTER_S)
        assert await reask_pass(runtime, metrics) == []
        for waiting_on in ("dispatch", "crm"):
            assert _sample(registry, "crm_erasures_waiting", waiting_on) == 0
        request = (await service.client.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
        assert request["status"] == "completed"
        assert datetime.fromisoformat(request["completed_at"]) < clock.now


async def test_a_request_still_unanswered_is_asked_again_each_period(crm: CrmFactory) -> None:
    clock = Clock()
    async with crm.running(clock=clock, erasure_reask_after_s=AFTER_S) as system:
        runtime = runtime_of(system.services["crm"])
        metrics = ErasureMetrics("crm", CollectorRegistry())
        request_id, _ = await _request(system.services["crm"])
        asks = []
        for _ in range(3):
            clock.advance(seconds=AFTER_S)
            [reask] = await reask_pass(runtime, metrics)
            asks.append((reask.request_id, reask.asks, len(reask.services)))
        assert asks == [(request_id, 2, 4), (request_id, 3, 4), (request_id, 4, 4)]


async def test_the_worker_runs_the_reask_on_its_settings(crm: CrmFactory) -> None:
    async with crm.running(erasure_reask_check_interval_s=7) as system:
        runtime = runtime_of(system.services["crm"])
        jobs = [loop for loop in consumers(runtime) if isinstance(loop, PeriodicJob)]
        [reask] = [job for job in jobs if job.name == "crm.erasure_reask"]
        assert reask.interval_s == 7
