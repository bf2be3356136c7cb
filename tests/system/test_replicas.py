"""Scale-out that is real: every worker runs as TWO processes (and ingest's and qualify's APIs as
two each) on PostgreSQL + Kafka, a stream of leads goes through, and

- no lead has a double effect: one queue row and one qualification in qualify, one assignment,
  one offer delivery and one webhook received per lead from dispatch, one timeline entry per
  step and one SLA fact per lead in crm;
- the load is split: each replica of each lead consumer applied a share of the events (a
  consumer group over 12 partitions), each dispatch replica sent a share of the webhooks
  (deliveries claimed with SKIP LOCKED), and each event was applied once over both replicas.

The processes are the real commands (``python -m <svc> api|worker``), stopped by pid."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from shared.db.migrate import upgrade
from shared.settings import ServiceSettings
from tests.support.harness import DEV_TOKEN, SERVICES, eventually
from tests.support.http_server import serve
from tests.support.infra import create_database, drop_database, require_kafka
from tests.support.ports import free_port
from tests.system.lead_flow import (
    ALWAYS,
    AUTH,
    WebhookReceiver,
    full_web_pool,
    post_lead,
    qualify_lead,
    queued,
)

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

REPLICAS = 2
APIS = {"ingest": 2, "qualify": 2, "dispatch": 1, "crm": 1}
LEADS = 40
# The consumer groups every worker joins; the lead consumers must split the leads.
GROUPS = [
    "ingest.privacy",
    "qualify.queue",
    "qualify.privacy",
    "dispatch.leads",
    "dispatch.privacy",
    "crm.leads",
    "crm.directory",
    "crm.privacy",
]
LEAD_CONSUMERS = {"qualify": "qualify.queue", "dispatch": "dispatch.leads", "crm": "crm.leads"}
STARTUP_S = 400.0  # fourteen Python processes starting on a busy 2-core machine


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str  # the API's base URL, or the worker's /metrics

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    processes: list[Process] = field(default_factory=list)

    def of(self, service: str, role: str) -> list[Process]:
        return [p for p in self.processes if p.name.startswith(f"{service} {role}")]

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.name} exited:\n{process.tail()}")


def _environment(service: str, database_url: str, prefix: str, bootstrap: str) -> dict[str, str]:
    upper = service.upper()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(f"{upper}_")}
    values = {
        "DATABASE_URL": database_url,
        "BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "DEV_TOKEN": DEV_TOKEN,
        "LOG_JSON": "true",
    }
    if service == "dispatch":
        # No offer expires and is re-offered meanwhile; the full-web pool works around the clock.
        values |= {
            "DEFAULT_ACCEPT_MINUTES": "100000",
            "REROUTE_AFTER_MINUTES": "100000",
            "FULL_WEB_HOURS": ALWAYS,
            # The sellers' tool listens on loopback, which webhooks reach only when allowed.
            "WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
        }
    return clean | {f"{upper}_{key}": value for key, value in values.items()}


@asynccontextmanager
async def running_stack(
    tmp_path: Path, databases: dict[str, str], prefix: str, bootstrap: str
) -> AsyncIterator[Stack]:
    stack = Stack()
    try:
        for service in SERVICES:
            env = _environment(service, databases[service], prefix, bootstrap)
            upper = service.upper()
            for number in range(1, APIS[service] + 1):
                port = free_port()
                stack.processes.append(
                    _start(
                        tmp_path,
                        f"{service} api {number}",
                        [sys.executable, "-m", service, "api"],
                        env | {f"{upper}_HTTP_PORT": str(port)},
                        f"http://127.0.0.1:{port}",
                    )
                )
            for number in range(1, REPLICAS + 1):
                port = free_port()
                stack.processes.append(
                    _start(
                        tmp_path,
                        f"{service} worker {number}",
                        [sys.executable, "-m", service, "worker"],
                        env | {f"{upper}_WORKER_METRICS_PORT": str(port)},
                        f"http://127.0.0.1:{port}/metrics",
                    )
                )
        yield stack
    finally:
        _stop(stack.processes)


def _start(tmp_path: Path, name: str, args: list[str], env: dict[str, str], url: str) -> Process:
    log = tmp_path / f"{name.replace(' ', '-')}.log"
    output: IO[bytes] = log.open("wb")
    try:
        popen = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)
    finally:
        output.close()
    return Process(name, popen, log, url)


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
    deadline = time.monotonic() + 30
    for process in processes:
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


async def _ready(stack: Stack, client: httpx.AsyncClient) -> None:
    async def answering(process: Process) -> None:
        url = process.url if process.url.endswith("/metrics") else f"{process.url}/readyz"

        async def up() -> bool:
            stack.check_alive()
            try:
                return (await client.get(url, timeout=5)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout_s=STARTUP_S, interval_s=0.5)

    await asyncio.gather(*(answering(process) for process in stack.processes))


async def _groups_shared(stack: Stack, client: httpx.AsyncClient, partitions: int) -> None:
    """Both replicas read a share of every group's partitions before the leads come (else the
    first one would hold them all until the second joins)."""

    async def shared() -> bool:
        stack.check_alive()
        held: dict[str, list[int]] = {}
        for process in stack.processes:
            if not process.url.endswith("/metrics"):
                continue
            text = (await client.get(process.url, timeout=10)).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "consumer_partitions":
                        held.setdefault(sample.labels["consumer"], []).append(int(sample.value))
        return all(
            len(held.get(group, [])) == REPLICAS
            and sum(held[group]) == partitions
            and min(held[group]) > 0
            for group in GROUPS
        )

    await eventually(shared, timeout_s=STARTUP_S, interval_s=1.0)


async def _stream(stack: Stack, client: httpx.AsyncClient) -> list[str]:
    """LEADS leads POSTed to both ingest APIs in turn (about 5 a second), while an operator
    claims and qualifies, through both qualify APIs in turn, each lead the queue shows."""
    ingests = [_client(client, p.url) for p in stack.of("ingest", "api")]
    qualifies = [_client(client, p.url) for p in stack.of("qualify", "api")]
    posted: list[str] = []
    qualified: set[str] = set()
    done = asyncio.Event()

    async def operator() -> None:
        turn = 0
        while not (done.is_set() and qualified >= set(posted)):
            for lead_id in await queued(qualifies[0]):
                if lead_id not in qualified:
                    await qualify_lead(qualifies[turn % len(qualifies)], lead_id)
                    qualified.add(lead_id)
                    turn += 1
            await asyncio.sleep(0.2)

    working = asyncio.create_task(operator())
    for index in range(LEADS):
        posted.append(await post_lead(ingests[index % len(ingests)], "replicas", index))
        await asyncio.sleep(0.2)
    done.set()
    await asyncio.wait_for(working, timeout=STARTUP_S)
    return posted


def _client(client: httpx.AsyncClient, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=60)


async def _worker_counters(stack: Stack, client: httpx.AsyncClient) -> dict[str, Counter[str]]:
    """Per worker process: events applied per consumer, webhooks delivered, events published."""
    counters: dict[str, Counter[str]] = {}
    for process in stack.processes:
        if not process.url.endswith("/metrics"):
            continue
        counts: Counter[str] = Counter()
        text = (await client.get(process.url, timeout=10)).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "events_consumed_total" and labels["outcome"] == "applied":
                    counts[labels["consumer"]] += int(sample.value)
                elif sample.name == "dispatch_webhook_attempts_total":
                    counts[f"webhooks {labels['outcome']}"] += int(sample.value)
                elif sample.name == "events_published_total":
                    counts["published"] += int(sample.value)
        counters[process.name] = counts
    return counters


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _rows(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(_dsn(url))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def _leads_of(url: str, sql: str, *args: Any) -> list[str]:
    return [str(row[0]) for row in await _rows(url, sql, *args)]


def _once_each(found: Iterable[str | None], leads: list[str], what: str) -> Iterator[str]:
    """Complaints about leads that have not exactly one of ``what``."""
    counts = Counter(found)
    for lead_id in leads:
        if counts[lead_id] != 1:
            yield f"{lead_id}: {counts[lead_id]} {what}"


@pytest.mark.timeout(1800)
async def test_two_replicas_of_each_worker_share_the_leads_without_double_effects(
    tmp_path: Path,
) -> None:
    bootstrap = await require_kafka()
    prefix = f"r{uuid.uuid4().hex[:10]}."
    databases = {service: await create_database() for service in SERVICES}
    try:
        for service, url in databases.items():  # one at a time: each runs its own loop
            await asyncio.to_thread(upgrade, SERVICES[service].migrations, url)
        receiver = WebhookReceiver()
        async with (
            serve(receiver) as hook_base,
            running_stack(tmp_path, databases, prefix, bootstrap) as stack,
            httpx.AsyncClient(timeout=60) as client,
        ):
            await _ready(stack, client)
            await _groups_shared(stack, client, ServiceSettings().topic_partitions)
            dispatch = _client(client, stack.of("dispatch", "api")[0].url)
            await full_web_pool(dispatch, f"{hook_base}/hook")
            leads = await _stream(stack, client)

            async def all_offered() -> bool:
                stack.check_alive()
                offered = {hook.lead_id for hook in receiver.of_type("assignment.offered")}
                return offered >= set(leads)

            await eventually(all_offered, timeout_s=300, interval_s=0.5)

            async def crm_caught_up() -> bool:
                rows = await _rows(
                    databases["crm"],
                    "SELECT count(*) FROM timeline_entry WHERE kind = 'assignment.offered'",
                )
                return int(rows[0][0]) >= LEADS

            await eventually(crm_caught_up, timeout_s=300, interval_s=0.5)

            # A worker counts what it did after the fact (dispatch counts a pass's webhooks once
            # the pass is recorded, after the tool answered): wait for the counts themselves.
            async def counted() -> bool:
                counters = await _worker_counters(stack, client)
                return all(
                    sum(counters[f"{service} worker {n}"][name] for n in (1, 2)) >= LEADS
                    for service, name in (
                        ("qualify", "qualify.queue"),
                        ("dispatch", "dispatch.leads"),
                        ("dispatch", "webhooks delivered"),
                    )
                )

            await eventually(counted, timeout_s=300, interval_s=0.5)
            await asyncio.sleep(2.0)  # anything doubled late would show now
            counters = await _worker_counters(stack, client)

        problems: list[str] = []
        offers = [(hook.lead_id, hook.id) for hook in receiver.of_type("assignment.offered")]
        problems += _once_each([lead for lead, _ in offers], leads, "offer webhooks")
        qualify, dispatch_db, crm = databases["qualify"], databases["dispatch"], databases["crm"]
        problems += _once_each(
            await _leads_of(qualify, "SELECT lead_id FROM queued_lead"), leads, "queue rows"
        )
        problems += _once_each(
            await _leads_of(qualify, "SELECT lead_id FROM qualification"), leads, "qualifications"
        )
        problems += _once_each(
            await _leads_of(dispatch_db, "SELECT lead_id FROM assignment"), leads, "assignments"
        )
        problems += _once_each(
            await _leads_of(
                dispatch_db,
                "SELECT lead_id FROM webhook_delivery WHERE event_type = 'assignment.offered'",
            ),
            leads,
            "offer deliveries",
        )
        for kind in ("lead.received", "lead.qualified", "assignment.offered"):
            problems += _once_each(
                await _leads_of(crm, "SELECT lead_id FROM timeline_entry WHERE kind = $1", kind),
                leads,
                f"{kind} timeline entries",
            )
        problems += _once_each(
            await _leads_of(crm, "SELECT lead_id FROM sla_fact WHERE offered_at IS NOT NULL"),
            leads,
            "SLA facts with their offer",
        )
        assert not problems, "\n".join(problems)

        # The split: each replica did a share; over both, each event was applied once.
        shares_file = tmp_path / "shares.txt"  # how the work split, for a reader of the run
        shares_file.write_text(
            "".join(f"{name}: {dict(sorted(c.items()))}\n" for name, c in sorted(counters.items()))
        )
        for service, consumer in LEAD_CONSUMERS.items():
            shares = [counters[f"{service} worker {n}"][consumer] for n in (1, 2)]
            assert all(share > 0 for share in shares), f"{consumer}: {shares}"
        received = [counters[f"qualify worker {n}"]["qualify.queue"] for n in (1, 2)]
        assert sum(received) == LEADS, received
        qualified = [counters[f"dispatch worker {n}"]["dispatch.leads"] for n in (1, 2)]
        assert sum(qualified) == LEADS, qualified
        sent = [counters[f"dispatch worker {n}"]["webhooks delivered"] for n in (1, 2)]
        assert sum(sent) == LEADS, sent
        assert all(share > 0 for share in sent), sent
    finally:
        for url in databases.values():
            await drop_database(url)
