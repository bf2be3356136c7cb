"""Faults on PostgreSQL + Kafka with the four services as real processes: a stream of leads goes
through the whole pipeline (ingest, qualify with a scripted operator, dispatch, a sellers' tool on
loopback that accepts each offer, crm) while, in turn, the Kafka broker is stopped and restarted,
each worker is killed with SIGKILL mid-batch and restarted, PostgreSQL is restarted, the sellers'
tool is down for a while, and a poison event is published on the leads topic. After each fault
every lead has reached its end state exactly once, counted in each service's database and in the
tool's log (no lead lost; no second lead, qualification, offer, webhook, timeline entry or SLA
fact). Then a batch of erasures under the same faults (and a poison record on the privacy
topic): every request completes, the tool is told once to forget each lead, and no database
holds the erased people's data.

Bounded: about 50 leads (``FAULTS_BATCH``) and 6 erasures; every wait is on a condition, with
generous timeouts.
Stops the test servers: only with ``ALLOW_BROKER_RESTART=1`` (``make test`` and CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.bus import build_bus
from shared.db import create_engine
from shared.events import Topics
from tests.support.faults import infra, require_restarts
from tests.support.fuzz import record_figures
from tests.support.harness import eventually, migrate, settings_for
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database
from tests.support.pii_scan import database_hits
from tests.support.process_stack import SERVICES, ProcessStack, service_env
from tests.support.webhook_receiver import Receiver

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.broker_restart,
    pytest.mark.timeout(1800),
]

ALWAYS = "mon-sun 00:00-24:00"
SECRET = "whsec_" + "ZmF1bHRzLXRlc3Qtc2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ=="
# Leads per fault (``FAULTS_BATCH`` for a longer run; even).
BATCH = int(os.environ.get("FAULTS_BATCH", "8"))
# The end state of one fault's batch is reached within this (a Kafka restart, retries with
# back-off and a 2-core machine shared with other jobs).
SETTLE_S = 300.0
# What crm records for each lead that went the whole way, once each.
TIMELINE_KINDS = (
    "lead.received",
    "lead.qualified",
    "assignment.offered",
    "lead.assigned",
    "assignment.accepted",
)


def surname(index: int) -> str:
    """A surname unique to lead ``index`` (letters only: names are validated)."""
    letters = ""
    number = index
    for _ in range(4):
        letters += chr(ord("a") + number % 26)
        number //= 26
    return "Panne" + letters


def phone(index: int) -> str:
    return f"06 47 {index // 10000 % 100:02d} {index // 100 % 100:02d} {index % 100:02d}"


@dataclass
class Stream:
    """The leads sent so far and the actors that carry them to their end state."""

    stack: ProcessStack
    receiver: Receiver
    seller_token: str
    urls: dict[str, str]
    leads: dict[str, int] = field(default_factory=dict)  # lead id -> index
    next_index: int = 0
    accepted: set[str] = field(default_factory=set)  # assignment ids
    faults: list[str] = field(default_factory=list)

    async def submit(self, count: int) -> list[str]:
        """Post ``count`` leads to ingest, retrying through outages (idempotent: same ref)."""
        ids = []
        async with self.stack.client("ingest") as client:
            for _ in range(count):
                index = self.next_index
                self.next_index += 1
                body = {
                    "source": "leboncoin",
                    "source_ref": f"faults-{index}",
                    "contact": {"full_name": f"Prospect {surname(index)}", "phone": phone(index)},
                    "vehicle": {"ad_ref": f"AD-FAULT-{index % 5}"},
                }
                response = await retry(functools.partial(client.post, "/v1/leads", json=body))
                assert response.status_code == 202, response.text
                lead_id = str(response.json()["id"])
                self.leads[lead_id] = index
                ids.append(lead_id)
        return ids

    async def operator(self, stop: asyncio.Event) -> None:
        """Claims and qualifies every lead of the stream: those in the queue, and those it
        claimed but could not qualify yet (an outage answered 503; a claimed lead leaves the
        queue)."""
        pending: set[str] = set()
        async with self.stack.client("qualify") as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    queue = await client.get("/v1/queue", params={"limit": 200})
                    if queue.status_code == 200:
                        pending.update(
                            item["lead_id"]
                            for item in queue.json()["items"]
                            if item["lead_id"] in self.leads
                        )
                    for lead_id in sorted(pending):
                        if await self._qualify(client, lead_id):
                            pending.discard(lead_id)
                await _pause(stop, 0.3)

    async def _qualify(self, client: httpx.AsyncClient, lead_id: str) -> bool:
        """True once the lead is qualified (by this call or an earlier one)."""
        await client.post(f"/v1/leads/{lead_id}/claim")
        qualified = await client.post(
            f"/v1/leads/{lead_id}/qualification", json={"intent": "buy", "channel": "full_web"}
        )
        if qualified.status_code == 201:
            return True
        state = await client.get(f"/v1/leads/{lead_id}")
        return state.status_code == 200 and state.json().get("status") == "qualified"

    async def seller(self, stop: asyncio.Event) -> None:
        """Accepts every offer the sellers' tool received (once accepted, never again)."""
        async with self.stack.client("dispatch", self.seller_token) as client:
            while not stop.is_set():
                for offer in list(self.receiver.offers()):
                    if offer.assignment_id is None or offer.assignment_id in self.accepted:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.post(offer.callbacks["accept"])
                        if response.status_code == 200:
                            self.accepted.add(offer.assignment_id)
                        elif response.status_code == 409:
                            state = await client.get(f"/v1/assignments/{offer.assignment_id}")
                            if state.status_code == 200 and state.json()["status"] == "accepted":
                                self.accepted.add(offer.assignment_id)
                await _pause(stop, 0.3)

    async def census(self) -> list[str]:
        """Every way the stream is not (yet) exactly once at its end state; counted per lead."""
        return await census(self.urls, self.leads, self.receiver)

    async def settle(self, fault: str) -> None:
        """Wait until every lead so far is at its end state exactly once."""
        started = time.monotonic()
        try:
            await eventually(self._settled, timeout_s=SETTLE_S, interval_s=1.0)
        except AssertionError:
            problems = await self.census()
            raise AssertionError(f"after {fault}: {problems[:20]}") from None
        self.faults.append(f"{fault} ({time.monotonic() - started:.0f} s to settle)")

    async def _settled(self) -> bool:
        return not await self.census()


async def retry(
    call: Callable[[], Awaitable[httpx.Response]], timeout_s: float = 180.0
) -> httpx.Response:
    """``call`` until it is answered with something else than 5xx (outages answer 503)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = await call()
            if response.status_code < 500:
                return response
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("still failing after the outage")
        await asyncio.sleep(0.5)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql), params)).all()]
    finally:
        await engine.dispose()


async def census(urls: dict[str, str], leads: dict[str, int], receiver: Receiver) -> list[str]:
    problems: list[str] = []
    expected = set(leads)
    try:
        ingest = [r[0] for r in await rows(urls["ingest"], "SELECT id FROM lead")]
        qualified = [r[0] for r in await rows(urls["qualify"], "SELECT lead_id FROM qualification")]
        assignments = await rows(urls["dispatch"], "SELECT lead_id, status FROM assignment")
        offers = await rows(
            urls["dispatch"],
            "SELECT lead_id FROM webhook_delivery WHERE event_type = 'assignment.offered'",
        )
        given_up = await rows(
            urls["dispatch"], "SELECT count(*) FROM webhook_delivery WHERE status = 'failed'"
        )
        timeline = await rows(urls["crm"], "SELECT lead_id, kind FROM timeline_entry")
        facts = [r[0] for r in await rows(urls["crm"], "SELECT lead_id FROM sla_fact")]
    except Exception as exc:  # a database restarting: not settled yet
        return [f"database unreachable: {type(exc).__name__}"]
    problems += _exactly_once("ingest lead", ingest, expected)
    problems += _exactly_once("qualification", qualified, expected)
    problems += _exactly_once("assignment", [lead for lead, _ in assignments], expected)
    problems += [
        f"assignment of {lead} is {status}"
        for lead, status in assignments
        if lead in expected and status != "accepted"
    ]
    problems += _exactly_once("offer webhook queued", [r[0] for r in offers], expected)
    if given_up[0][0]:
        problems.append(f"{given_up[0][0]} webhook deliveries given up")
    received: dict[str, set[str]] = {}
    for delivery in receiver.offers():
        if delivery.lead_id is not None:
            received.setdefault(delivery.lead_id, set()).add(delivery.webhook_id)
    for lead in expected:
        count = len(received.get(lead, set()))
        if count != 1:
            problems.append(f"lead {lead}: {count} distinct offer webhooks received")
    problems += _exactly_once("SLA fact", facts, expected)
    for kind in TIMELINE_KINDS:
        problems += _exactly_once(
            f"timeline {kind}", [lead for lead, k in timeline if k == kind], expected
        )
    seen: dict[tuple[str, str], int] = {}
    for entry in timeline:
        seen[entry] = seen.get(entry, 0) + 1
    problems += [
        f"timeline {kind} of {lead} {n} times" for (lead, kind), n in seen.items() if n > 1
    ]
    return problems


def _exactly_once(what: str, found: list[str], expected: set[str]) -> list[str]:
    counts: dict[str, int] = {}
    for lead in found:
        counts[lead] = counts.get(lead, 0) + 1
    problems = [f"{what} missing for {lead}" for lead in sorted(expected - set(counts))]
    problems += [f"{what} {n} times for {lead}" for lead, n in counts.items() if n > 1]
    return problems


@contextlib.asynccontextmanager
async def running_stream(tmp_path: Path) -> AsyncIterator[Stream]:
    prefix = f"f{uuid.uuid4().hex[:8]}."
    urls = {name: await create_database() for name in SERVICES}
    receiver = Receiver(SECRET)
    await receiver.start()
    env = {}
    for name in SERVICES:
        await migrate(settings_for(name, database_url=urls[name]))
        extra: dict[str, str] = {}
        if name == "dispatch":
            extra = {
                "FULL_WEB_HOURS": ALWAYS,
                # Retries that outlast the tool's outages of this test (2 min in all).
                "WEBHOOK_RETRY_SCHEDULE_S": "[0, 1, 2, 4, 8, 15, 30, 60]",
                "WEBHOOK_DISABLE_AFTER_FAILURES": "1000",
                "WEBHOOK_POLL_INTERVAL_S": "0.2",
                "WEBHOOK_TIMEOUT_S": "5",
                "TIMER_POLL_INTERVAL_S": "0.5",
            }
        env[name] = service_env(
            name,
            database_url=urls[name],
            kafka_bootstrap=KAFKA_BOOTSTRAP,
            topic_prefix=prefix,
            **extra,
        )
    dispatch_port = env["dispatch"]["DISPATCH_HTTP_PORT"]
    env["dispatch"]["DISPATCH_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{dispatch_port}"
    stack = ProcessStack(tmp_path, env)
    stop = asyncio.Event()
    actors: list[asyncio.Task[None]] = []
    try:
        await stack.start()
        seller_token = await enrol_seller(stack, receiver)
        stream = Stream(stack, receiver, seller_token, urls)
        actors = [
            asyncio.create_task(stream.operator(stop)),
            asyncio.create_task(stream.seller(stop)),
        ]
        yield stream
    finally:
        stop.set()
        await asyncio.gather(*actors, return_exceptions=True)
        await stack.stop()
        await receiver.stop()
        for url in urls.values():
            with contextlib.suppress(Exception):
                await drop_database(url)


async def enrol_seller(stack: ProcessStack, receiver: Receiver) -> str:
    """The one full-web seller, always on shift, with the loopback tool; its token."""
    async with stack.client("dispatch") as client:
        seller = await client.post(
            "/v1/sellers",
            json={
                "display_name": "Faults seller",
                "mode": "full_web",
                "shifts": ALWAYS,
                "capacity": 1000,
                "webhook_url": receiver.url,
                "webhook_secret": SECRET,
            },
        )
        assert seller.status_code == 201, seller.text
        token = await client.post(f"/v1/sellers/{seller.json()['id']}/token")
        assert token.status_code == 201, token.text
        return str(token.json()["token"])


async def publish_poison(prefix_settings: Mapping[str, str], topic: str = Topics.LEADS) -> None:
    """A record on ``topic`` that is no event at all."""
    settings = settings_for(
        "ingest",
        database_url="sqlite+aiosqlite://",
        bus="kafka",
        kafka_bootstrap_servers=KAFKA_BOOTSTRAP,
        topic_prefix=prefix_settings["INGEST_TOPIC_PREFIX"],
    )
    bus = build_bus(settings)
    await bus.start()
    try:
        await bus.publish(topic, key=b"poison", value=b"\x00 not an event {", headers=[])
    finally:
        await bus.stop()


async def test_every_lead_reaches_its_end_state_exactly_once_under_faults(
    tmp_path: Path,
) -> None:
    require_restarts()
    started = time.monotonic()
    async with running_stream(tmp_path) as stream:
        await stream.submit(BATCH)
        await stream.settle("no fault")

        # The broker stops mid-stream: ingest keeps accepting into its outbox.
        await stream.submit(BATCH // 2)
        await infra("stop", "kafka")
        try:
            await stream.submit(BATCH // 2)
        finally:
            await infra("start", "kafka")
        await stream.settle("Kafka stopped and restarted")

        # Each worker killed with SIGKILL mid-batch, then restarted.
        for service in SERVICES:
            worker = stream.stack.worker(service)
            sending = asyncio.create_task(stream.submit(BATCH // 2))
            await asyncio.sleep(0.5)  # the batch is on its way through the pipeline
            await worker.kill()
            await sending
            await worker.start()
            await worker.wait_ready()
            await stream.settle(f"{service} worker killed (SIGKILL) and restarted")

        # PostgreSQL restarts under the stream (every service's database at once).
        sending = asyncio.create_task(stream.submit(BATCH))
        await asyncio.sleep(0.5)
        await infra("stop", "postgres")
        try:
            await asyncio.sleep(2)
        finally:
            await infra("start", "postgres")
        await sending
        await stream.settle("PostgreSQL stopped and restarted")

        # The sellers' tool is down while offers are made; dispatch retries.
        await stream.receiver.stop()
        sent = len(stream.leads)
        await stream.submit(BATCH // 2)

        async def offers_failed() -> bool:
            failed = await rows(
                stream.urls["dispatch"],
                "SELECT count(*) FROM webhook_attempt WHERE status_code IS NULL",
            )
            return int(failed[0][0]) > 0

        await eventually(offers_failed, timeout_s=120, interval_s=0.5)
        await stream.receiver.start()
        await stream.settle("sellers' tool down, then back")
        assert len(stream.leads) == sent + BATCH // 2

        # A poison record on the leads topic: dead-lettered, the stream goes on.
        await publish_poison(stream.stack.env["ingest"])
        await stream.submit(BATCH // 2)
        await stream.settle("poison event on the leads topic")

        async def dead_lettered() -> bool:
            found = await rows(stream.urls["qualify"], "SELECT count(*) FROM dead_letter")
            return int(found[0][0]) >= 1

        await eventually(dead_lettered, timeout_s=60)

        await erase_under_faults(stream)
        record_figures(
            "faults",
            {
                "leads": len(stream.leads),
                "faults survived": stream.faults,
                "seconds": round(time.monotonic() - started),
            },
        )


async def erase_under_faults(stream: Stream) -> None:
    """Six clients erased under the same faults: the sellers' tool down, every worker killed
    with SIGKILL and restarted, Kafka and PostgreSQL restarted. Every request completes, the
    tool is told to forget each lead once, and no database holds their names or phones."""
    chosen = sorted(stream.leads.items(), key=lambda item: item[1])[:6]
    erased_leads = {lead_id for lead_id, _ in chosen}
    needles = [surname(index) for _, index in chosen]
    needles += [phone(index).replace(" ", "")[1:] for _, index in chosen]
    kept = sorted(stream.leads.items(), key=lambda item: item[1])[-1][1]
    requests = []
    async with stream.stack.client("crm") as crm:
        await stream.receiver.stop()
        for _, index in chosen:
            found = await retry(
                functools.partial(crm.get, "/v1/clients", params={"phone": phone(index)})
            )
            (client,) = found.json()["items"]
            erasure = {"client_id": client["id"]}
            created = await retry(
                functools.partial(crm.post, "/v1/privacy/erasure-requests", json=erasure)
            )
            assert created.status_code == 202, created.text
            requests.append(created.json()["id"])
        await publish_poison(stream.stack.env["ingest"], Topics.PRIVACY)
        workers = [stream.stack.worker(service) for service in SERVICES]
        await asyncio.gather(*(worker.kill() for worker in workers))
        for worker in workers:
            await worker.start()
        await asyncio.gather(*(worker.wait_ready() for worker in workers))
        # Back within the retry window of the messages queued meanwhile.
        await stream.receiver.start()
        await infra("stop", "kafka")
        await infra("start", "kafka")
        await infra("stop", "postgres")
        await infra("start", "postgres")

        async def all_completed() -> bool:
            for request_id in requests:
                with contextlib.suppress(httpx.HTTPError):
                    body = (await crm.get(f"/v1/privacy/erasure-requests/{request_id}")).json()
                    if body.get("status") != "completed":
                        return False
                    continue
                return False
            return True

        await eventually(all_completed, timeout_s=SETTLE_S, interval_s=1.0)

    def forgotten() -> dict[str, set[str]]:
        told: dict[str, set[str]] = {}
        for delivery in stream.receiver.log:
            if delivery.event_type == "lead.erased" and delivery.lead_id is not None:
                told.setdefault(delivery.lead_id, set()).add(delivery.webhook_id)
        return told

    async def tool_told() -> bool:
        return set(forgotten()) >= erased_leads

    await eventually(tool_told, timeout_s=SETTLE_S, interval_s=1.0)
    told = forgotten()
    assert set(told) == erased_leads
    assert all(len(ids) == 1 for ids in told.values()), told
    for name, url in stream.urls.items():
        hits = await database_hits(url, needles)
        assert hits == {}, f"{name} still holds erased data in {hits}"
    # The scan does see what was not erased.
    assert await database_hits(stream.urls["crm"], [surname(kept)]) != {}
    stream.faults.append(
        f"{len(requests)} erasures with the tool down, a poison record on the privacy topic, "
        "every worker SIGKILLed, Kafka and PostgreSQL restarted"
    )
