"""The pipeline as a whole: every service as real processes on PostgreSQL (production
durability) and Kafka, open-loop leads at fixed rates, a scripted instant operator, and a
seller's tool in its own process; per leg latencies, CPU per lead per process, idle cost, lost
and doubled leads; with one and with two replicas of each worker.

Phases of each configuration (fresh databases and topics each):

1. start: the four APIs (``python -m <svc> api``), ``replicas`` workers per service, the
   receiver; dispatch's directory (two always-open sites and the full-web pool, six sellers
   each, every seller's webhook to the receiver); warm-up leads through the whole path;
2. idle: no traffic and no operator, ``BENCH_PIPELINE_IDLE_S`` seconds: CPU of each process,
   transactions/s of the four databases (``pg_stat_database``);
3. the operator's polling alone (no leads): what the harness's queue polls cost qualify's API;
4. each rate of ``BENCH_PIPELINE_RATES`` for ``BENCH_PIPELINE_SECONDS``: open-loop POSTs, the
   operator qualifies what its polls show, the receiver records the offers; then wait until
   every lead has its offer (at most ``BENCH_PIPELINE_DRAIN_S`` after the last POST) and the
   system is quiet (outboxes empty, no delivery pending, crm caught up). The CPU window is the
   phase: first POST to quiet. A rate that does not drain ends the configuration (the next one
   would only measure the backlog).

Run alone: ``python -m benchmarks.run bench_pipeline``. Knobs (environment):
``BENCH_PIPELINE_RATES`` (5,20,50), ``BENCH_PIPELINE_SECONDS`` (30), ``BENCH_PIPELINE_REPLICAS``
(1,2), ``BENCH_PIPELINE_IDLE_S`` (20), ``BENCH_PIPELINE_DRAIN_S`` (60),
``BENCH_PIPELINE_PROFILE`` (a directory: py-spy profiles of the 20 leads/s phase, one replica),
``BENCH_PIPELINE_CPU_ROUNDS`` (3: with one replica, the rates the CPU goal judges run that many
times in all, the extra phases after the last rate, alternated; the goal takes each rate's
median).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from benchmarks.environment import asyncpg_dsn, durability, durability_text
from benchmarks.pipeline import report
from benchmarks.pipeline.flow import ScriptedOperator, open_loop, set_up_directory
from benchmarks.pipeline.measure import (
    HARNESS,
    KAFKA,
    OFFERED,
    POSTGRES,
    ConfigResult,
    PhaseResult,
    Snapshot,
    Webhooks,
    cpu_delta,
)
from benchmarks.pipeline.procstat import (
    busy_fraction,
    cpu_seconds,
    machine_ticks,
    pid_listening_on,
    tree_cpu_seconds,
)
from benchmarks.pipeline.profile import Profiler
from benchmarks.pipeline.system import (
    SERVICES,
    TOKEN,
    System,
    running_system,
    topic_partitions,
)

RATES = tuple(float(r) for r in os.environ.get("BENCH_PIPELINE_RATES", "5,20,50").split(","))
SECONDS = float(os.environ.get("BENCH_PIPELINE_SECONDS", "30"))
REPLICAS = tuple(int(r) for r in os.environ.get("BENCH_PIPELINE_REPLICAS", "1,2").split(","))
IDLE_SECONDS = float(os.environ.get("BENCH_PIPELINE_IDLE_S", "20"))
DRAIN_SECONDS = float(os.environ.get("BENCH_PIPELINE_DRAIN_S", "60"))
FINAL_DRAIN_S = 120.0
IDLE_SETTLE_S = 12.0
POLL_COST_SECONDS = 10.0
WARMUP_LEADS = 20
PROFILE_DIRECTORY = os.environ.get("BENCH_PIPELINE_PROFILE")
PROFILE_RATE = 20.0
DIRECT_SOURCE = "facebook"
CPU_ROUNDS = int(os.environ.get("BENCH_PIPELINE_CPU_ROUNDS", "3"))
DIRECT_RATE = float(os.environ.get("BENCH_PIPELINE_DIRECT_RATE", "20"))


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/")[0])


@dataclass
class Infrastructure:
    """The servers' processes when they run on this machine (None: not visible from here)."""

    postgres_pid: int | None
    kafka_pid: int | None

    @classmethod
    def find(cls) -> Infrastructure:
        from benchmarks.environment import KAFKA_BOOTSTRAP, POSTGRES_URL

        return cls(
            pid_listening_on(_port(POSTGRES_URL.split("@", 1)[1])),
            pid_listening_on(_port(KAFKA_BOOTSTRAP.split(",")[0])),
        )

    def cpu(self) -> dict[str, float]:
        readings = {HARNESS: cpu_seconds(os.getpid()) or 0.0}
        if self.postgres_pid is not None:
            readings[POSTGRES] = tree_cpu_seconds(self.postgres_pid) or 0.0
        if self.kafka_pid is not None:
            readings[KAFKA] = cpu_seconds(self.kafka_pid) or 0.0
        return readings


class Runner:
    def __init__(self, system: System, client: httpx.AsyncClient, infra: Infrastructure) -> None:
        self.system = system
        self.client = client
        self.infra = infra
        self.records: list[dict[str, Any]] = []
        self.offered_events = 0  # distinct offers received in this configuration

    def snapshot(self) -> Snapshot:
        self.system.check_alive()
        return Snapshot(time.time(), {**self.system.cpu(), **self.infra.cpu()})

    async def fetch_records(self) -> None:
        response = await self.client.get(
            f"{self.system.receiver_url}/records", params={"since": str(len(self.records))}
        )
        response.raise_for_status()
        self.records.extend(response.json())

    async def xacts(self) -> dict[str, int]:
        """Transactions so far of each service's database (from the ``postgres`` database, so
        asking is not counted)."""
        names = {url.rsplit("/", 1)[1]: svc for svc, url in self.system.databases.items()}
        connection = await asyncpg.connect(asyncpg_dsn(), timeout=10)
        try:
            rows = await connection.fetch(
                "SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database "
                "WHERE datname = ANY($1::text[])",
                list(names),
            )
        finally:
            await connection.close()
        return {names[str(row["datname"])]: int(row["n"]) for row in rows}

    async def quiet_state(self) -> tuple[int, int, int, int]:
        outbox = 0
        for service in SERVICES:
            outbox += int(await self.system.scalar(service, "SELECT count(*) FROM outbox_event"))
        pending = int(
            await self.system.scalar(
                "dispatch", "SELECT count(*) FROM webhook_delivery WHERE status = 'pending'"
            )
        )
        crm_offers = int(
            await self.system.scalar(
                "crm", "SELECT count(*) FROM timeline_entry WHERE kind = $1", OFFERED
            )
        )
        processed = int(await self.system.scalar("crm", "SELECT count(*) FROM processed_event"))
        return outbox, pending, crm_offers, processed

    async def settle(self, timeout_s: float) -> bool:
        """Wait until outboxes are empty, no delivery is pending, crm has recorded every offer
        received so far, and nothing moved for a second."""
        deadline = time.monotonic() + timeout_s
        last: tuple[int, int, int, int] | None = None
        while time.monotonic() < deadline:
            state = await self.quiet_state()
            outbox, pending, crm_offers, _ = state
            if outbox == 0 and pending == 0 and crm_offers >= self.offered_events:
                if state == last:
                    return True
                last = state
                await asyncio.sleep(1.0)
                continue
            last = None
            await asyncio.sleep(0.5)
        return False

    async def crm_times(self, leads: list[str]) -> dict[str, float]:
        """When crm recorded each lead's offer: the latest ``processed_at`` of the offered event
        over crm's consumers (the timeline entry's id is the event id)."""
        try:
            rows = await self.system.fetch(
                "crm",
                "SELECT t.lead_id, max(p.processed_at) AS at FROM timeline_entry t "
                "JOIN processed_event p ON p.event_id = t.id "
                "WHERE t.kind = $1 AND t.lead_id = ANY($2::text[]) GROUP BY t.lead_id",
                OFFERED,
                leads,
            )
        except asyncpg.PostgresError as exc:
            sys.stderr.write(f"pipeline: crm times not observable: {exc!r}\n")
            return {}
        return {str(row["lead_id"]): row["at"].timestamp() for row in rows}

    async def answer_times(self, leads: list[str]) -> dict[str, float]:
        """When qualify handed each lead's first answer e-mail to the SMTP server."""
        try:
            rows = await self.system.fetch(
                "qualify",
                "SELECT lead_id, min(sent_at) AS at FROM outgoing_message "
                "WHERE kind = 'first_answer' AND channel = 'email' AND sent_at IS NOT NULL "
                "AND lead_id = ANY($1::text[]) GROUP BY lead_id",
                leads,
            )
        except asyncpg.PostgresError as exc:
            sys.stderr.write(f"pipeline: first answers not observable: {exc!r}\n")
            return {}
        return {str(row["lead_id"]): row["at"].timestamp() for row in rows}

    async def phase(
        self,
        rate: float,
        seconds: float,
        tag: str,
        profiler: Profiler | None = None,
        *,
        direct: bool = False,
    ) -> PhaseResult:
        """One rate; ``direct``: leads of the direct-routing source, and no operator."""
        operator = ScriptedOperator(self.system.urls["qualify"])
        stop = asyncio.Event()
        before_counters = await self.system.worker_counters(self.client)
        before = self.snapshot()
        operating = asyncio.create_task(stop.wait() if direct else operator.run(stop))
        if profiler is not None:
            profiler.start(self.system.services, seconds + 15)
        ticks_before = machine_ticks()
        sent = await open_loop(
            self.system.urls["ingest"],
            rate=rate,
            seconds=seconds,
            tag=tag,
            source=DIRECT_SOURCE if direct else "leboncoin",
        )
        machine_busy = busy_fraction(ticks_before, machine_ticks())
        leads = {item.lead_id for item in sent if item.lead_id}
        deadline = time.monotonic() + DRAIN_SECONDS
        webhooks = Webhooks()
        drained = False
        while time.monotonic() < deadline:
            await self.fetch_records()
            webhooks = Webhooks.of(self.records, leads)
            # A lead the operator failed to qualify never gets an offer: not waited for.
            drained = set(webhooks.first_offer_at) >= leads - operator.failed
            if drained:
                break
            self.system.check_alive()
            await asyncio.sleep(0.5)
        self.offered_events = sum(Webhooks.of(self.records, self._all_leads()).offers.values())
        settled = await self.settle(30.0 if drained else 5.0)
        stop.set()
        await operating
        after = self.snapshot()
        after_counters = await self.system.worker_counters(self.client)
        await self.fetch_records()
        webhooks = Webhooks.of(self.records, leads)
        return PhaseResult(
            rate=rate,
            seconds=seconds,
            sent=sent,
            traces={lead: operator.traces[lead] for lead in leads if lead in operator.traces},
            webhooks=webhooks,
            crm_at=await self.crm_times(sorted(leads)),
            answer_at=await self.answer_times(sorted(leads)),
            cpu=cpu_delta(before, after),
            window_s=after.at - before.at,
            drained=drained,
            settled=settled,
            counters={
                name: {
                    key: value - before_counters.get(name, {}).get(key, 0.0)
                    for key, value in values.items()
                }
                for name, values in after_counters.items()
            },
            operator_failures=operator.failures,
            polls=operator.polls,
            unqualified=operator.failed & leads,
            machine_busy=machine_busy,
        )

    async def final_drain(self, phases: list[PhaseResult], timeout_s: float) -> float:
        """Give late leads a last chance (until each has an offer, or ``timeout_s``), then
        record every phase's offers: a lead still without one is lost, not late."""
        leads = {lead for phase in phases for lead in phase.leads}
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            await self.fetch_records()
            if len(Webhooks.of(self.records, leads).first_offer_at) >= len(leads):
                break
            self.system.check_alive()
            await asyncio.sleep(1.0)
        await self.fetch_records()
        for phase in phases:
            phase.final_offers = Webhooks.of(self.records, set(phase.leads)).offers
        return time.monotonic() - started

    def _all_leads(self) -> set[str]:
        return {str(record["lead_id"]) for record in self.records if record.get("lead_id")}

    async def idle(self, seconds: float) -> tuple[dict[str, float], float, dict[str, int]]:
        # PostgreSQL (15+) flushes an idle backend's transaction counts up to 10 s late
        # (PGSTAT_IDLE_INTERVAL): with a shorter settle the warm-up's own transactions (and the
        # first answers still being sent) were counted as idle ones.
        await asyncio.sleep(IDLE_SETTLE_S)
        xacts_before = await self.xacts()
        before = self.snapshot()
        await asyncio.sleep(seconds)
        after = self.snapshot()
        xacts_after = await self.xacts()
        xacts = {name: xacts_after[name] - xacts_before.get(name, 0) for name in xacts_after}
        return cpu_delta(before, after), after.at - before.at, xacts

    async def poll_cost(self, seconds: float) -> dict[str, float]:
        operator = ScriptedOperator(self.system.urls["qualify"])
        stop = asyncio.Event()
        before = self.snapshot()
        task = asyncio.create_task(operator.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        after = self.snapshot()
        delta = cpu_delta(before, after)
        return {
            "cpu_s": delta["qualify api"],
            "harness_s": delta[HARNESS],
            "polls": float(operator.polls),
            "seconds": after.at - before.at,
        }


async def direct_routing_hook(system: System, client: httpx.AsyncClient) -> str | None:
    """Direct routing (issue 13): leads of a source whose policy is ``direct`` skip the
    operator. Sets that policy for ``DIRECT_SOURCE`` through qualify's routing API (full-web
    channel) and returns None; or, when the API is absent or refuses, the note saying why
    the direct path is not measured."""
    response = await client.put(
        f"{system.urls['qualify']}/v1/routing/sources/{DIRECT_SOURCE}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"path": "direct", "channel": "full_web"},
    )
    if response.status_code in (404, 405):
        return (
            "Direct routing (leads that skip qualification, issue 13): not measured, qualify "
            "has no routing API (`direct_routing_hook` in benchmarks/bench_pipeline.py)."
        )
    if response.status_code >= 300:
        return (
            f"Direct routing: **not measured**, qualify refused the policy "
            f"({response.status_code}; `direct_routing_hook` in benchmarks/bench_pipeline.py)."
        )
    return None


async def cpu_rounds(runner: Runner, label: str) -> list[PhaseResult]:
    """The extra phases of the rates the CPU goal judges: ``CPU_ROUNDS - 1`` more of each,
    alternated (20, 50, 20, 50…), so that a slow minute of the machine lands on one phase of a
    rate, not on its verdict. Stops at a phase that does not drain (the goal then fails)."""
    judged = [rate for rate in RATES if rate >= report.CPU_GOAL_FROM_RATE]
    phases: list[PhaseResult] = []
    for round_number in range(2, CPU_ROUNDS + 1):
        for rate in judged:
            sys.stderr.write(
                f"pipeline: {label}: CPU round {round_number}, {rate:g} leads/s for "
                f"{SECONDS:.0f} s…\n"
            )
            phase = await runner.phase(rate, SECONDS, f"{label}-{rate:g}-round{round_number}")
            phases.append(phase)
            if not phase.drained:
                return phases
    return phases


async def run_config(replicas: int, infra: Infrastructure) -> ConfigResult:
    label = f"{replicas}-replica{'s' if replicas > 1 else ''}"
    sys.stderr.write(f"pipeline: {label}: starting the system…\n")
    async with (
        running_system(label, replicas=replicas) as system,
        httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=200, max_keepalive_connections=100)
        ) as client,
    ):
        result = ConfigResult(replicas, await topic_partitions(system))
        result.processes = [process.name for process in system.services]
        runner = Runner(system, client, infra)
        await set_up_directory(system, client)
        sys.stderr.write(f"pipeline: {label}: warm-up…\n")
        result.warmup = await runner.phase(5.0, WARMUP_LEADS / 5.0, f"{label}-warm")
        if result.warmup.missing:
            raise RuntimeError(
                f"warm-up: {result.warmup.missing} of {result.warmup.accepted} leads got no "
                f"offer within {DRAIN_SECONDS:.0f} s (operator failures: "
                f"{dict(result.warmup.operator_failures)}); logs in var/benchmarks/"
            )
        sys.stderr.write(f"pipeline: {label}: idle {IDLE_SECONDS:.0f} s…\n")
        result.idle_cpu, result.idle_s, result.idle_xacts = await runner.idle(IDLE_SECONDS)
        result.poll_cost = await runner.poll_cost(POLL_COST_SECONDS)
        for rate in RATES:
            profiler = None
            if PROFILE_DIRECTORY and replicas == 1 and rate == PROFILE_RATE:
                profiler = Profiler.find(PROFILE_DIRECTORY, os.environ.get("BENCH_PYSPY"))
            sys.stderr.write(f"pipeline: {label}: {rate:g} leads/s for {SECONDS:.0f} s…\n")
            phase = await runner.phase(rate, SECONDS, f"{label}-{rate:g}", profiler)
            result.phases.append(phase)
            if profiler is not None:
                result.profile = profiler.finish()
            if not phase.drained:
                result.skipped = [f"{r:g}" for r in RATES if r > rate]
                break
        if replicas == 1 and not result.skipped:
            result.cpu_rounds = await cpu_rounds(runner, label)
        every = result.phases + result.cpu_rounds
        if any(phase.missing for phase in every):
            sys.stderr.write(f"pipeline: {label}: waiting for late leads…\n")
        result.final_wait_s = await runner.final_drain(
            every, FINAL_DRAIN_S if any(p.missing for p in every) else 0.0
        )
        note = await direct_routing_hook(system, client)
        if note is None:
            sys.stderr.write(f"pipeline: {label}: direct routing, {DIRECT_RATE:g} leads/s…\n")
            result.direct = await runner.phase(DIRECT_RATE, SECONDS, f"{label}-direct", direct=True)
            note = ""
        result.direct_routing = note
    return result


async def run() -> str:
    infra = Infrastructure.find()
    settings = await durability()
    results = [await run_config(replicas, infra) for replicas in REPLICAS]
    return report.section(
        results,
        durability=durability_text(settings),
        seconds=SECONDS,
        idle_seconds=IDLE_SECONDS,
        drain_seconds=DRAIN_SECONDS,
        infra_names=(POSTGRES, KAFKA, HARNESS),
        profiled=bool(PROFILE_DIRECTORY),
        warmup_leads=WARMUP_LEADS,
    )
