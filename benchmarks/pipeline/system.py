"""The whole system as real processes, the way ``make run`` or docker starts it: for each
service ``python -m <svc> api`` (uvicorn) and ``python -m <svc> worker`` (``replicas`` of them),
on four fresh PostgreSQL databases and a Kafka topic prefix of their own; and the webhook
receiver (``benchmarks.pipeline.receiver``) in its own process.

Everything started here is stopped here (by pid), the databases dropped and the topics
deleted. The processes' logs go to ``var/benchmarks/pipeline-logs/<label>/`` (kept for a
post-mortem: a failed start prints the tail).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from benchmarks.environment import KAFKA_BOOTSTRAP, POSTGRES_URL, ROOT, SMTP_PORT, asyncpg_dsn
from benchmarks.pipeline.procstat import cpu_seconds
from tests.support.ports import free_port

SERVICES = ("ingest", "qualify", "dispatch", "crm")
TOKEN = "vo_bench-pipeline-every-role"
WEBHOOK_SECRET = "whsec_" + "QmVuY2hQaXBlbGluZVNlY3JldEtleTAxMjM0NTY3"
LOGS = ROOT / "var/benchmarks/pipeline-logs"
STARTUP_S = 600.0
# Deadlines far beyond a run: no offer expires and is re-offered while leads are measured
# (a re-offer would look like a doubled lead); the full-web pool works around the clock.
DISPATCH_ENV = {
    "DISPATCH_DEFAULT_ACCEPT_MINUTES": "100000",
    "DISPATCH_REROUTE_AFTER_MINUTES": "100000",
    "DISPATCH_FULL_WEB_HOURS": "mon-sun 00:00-24:00",
    # The receiver listens on loopback, which webhooks reach only when allowed (SSRF guard).
    "DISPATCH_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
}
# The automatic first answer goes to a real SMTP server (Postfix of scripts/smtp.sh, which takes
# the message and drops it: the bench's prospects are on its discard domain); no SMS provider, so
# the first answers are e-mails only.
QUALIFY_ENV = {
    "QUALIFY_SMTP_HOST": "127.0.0.1",
    "QUALIFY_SMTP_PORT": str(SMTP_PORT),
    "QUALIFY_SMTP_TLS": "none",
}


@dataclass
class Process:
    """One running process of the system: ``name`` like ``qualify worker 2``."""

    name: str
    service: str
    role: str  # "api", "worker" or "receiver"
    popen: subprocess.Popen[bytes]
    log_path: Path
    metrics_url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid) or 0.0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class System:
    label: str
    replicas: int
    databases: dict[str, str]  # service -> SQLAlchemy URL
    topic_prefix: str
    urls: dict[str, str]  # service -> API base URL
    receiver_url: str
    processes: list[Process] = field(default_factory=list)
    connections: dict[str, asyncpg.Connection] = field(default_factory=dict)

    @property
    def services(self) -> list[Process]:
        return [process for process in self.processes if process.role != "receiver"]

    @property
    def receiver(self) -> Process:
        return next(process for process in self.processes if process.role == "receiver")

    def cpu(self) -> dict[str, float]:
        return {process.name: process.cpu() for process in self.processes}

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise RuntimeError(
                    f"{process.name} exited ({process.popen.returncode}):\n{process.log_tail()}"
                )

    async def scalar(self, service: str, sql: str, *args: Any) -> Any:
        return await self.connections[service].fetchval(sql, *args)

    async def fetch(self, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.connections[service].fetch(sql, *args)
        return rows

    async def worker_counters(self, client: httpx.AsyncClient) -> dict[str, dict[str, float]]:
        """Per worker process: events applied by consumer, events published, webhooks sent."""
        counters: dict[str, dict[str, float]] = {}
        for process in self.processes:
            if process.metrics_url is None:
                continue
            text = (await client.get(process.metrics_url, timeout=10)).text
            mine = counters.setdefault(process.name, {})
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "events_consumed_total":
                        key = f"{sample.labels['consumer']} {sample.labels['outcome']}"
                    elif sample.name == "events_published_total":
                        key = "published"
                    elif sample.name == "dispatch_webhook_attempts_total":
                        key = f"webhooks {sample.labels.get('outcome', '')}".strip()
                    else:
                        continue
                    mine[key] = mine.get(key, 0.0) + sample.value
        return counters


def _env(service: str, system: System, extra: Mapping[str, str]) -> dict[str, str]:
    prefix = service.upper()
    env = {
        **os.environ,
        f"{prefix}_DATABASE_URL": system.databases[service],
        f"{prefix}_BUS": "kafka",
        f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        f"{prefix}_TOPIC_PREFIX": system.topic_prefix,
        f"{prefix}_DEV_TOKEN": TOKEN,
        f"{prefix}_HTTP_PORT": system.urls[service].rsplit(":", 1)[1],
        f"{prefix}_LOG_JSON": "true",
        **(DISPATCH_ENV if service == "dispatch" else {}),
        **(QUALIFY_ENV if service == "qualify" else {}),
        **extra,
    }
    env.pop(f"{prefix}_WORKER_METRICS_PORT", None)
    return env


def _start(
    name: str,
    service: str,
    role: str,
    args: list[str],
    env: Mapping[str, str],
    logs: Path,
    metrics_url: str | None = None,
) -> Process:
    log_path = logs / f"{name.replace(' ', '-')}.log"
    log: IO[bytes] = log_path.open("wb")  # a pipe nobody reads would block the process
    try:
        popen = subprocess.Popen(
            args, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()
    return Process(name, service, role, popen, log_path, metrics_url)


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


async def _wait_http(url: str, process: Process, client: httpx.AsyncClient, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            if (await client.get(url, timeout=2)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready at {url} after {seconds:.0f} s")


@asynccontextmanager
async def _databases(run: str) -> AsyncIterator[dict[str, str]]:
    admin = await asyncpg.connect(asyncpg_dsn(), timeout=10)
    names = {service: f"bench_pipe_{run}_{service}" for service in SERVICES}
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
        yield {
            service: make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
            for service, name in names.items()
        }
    finally:
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _delete_topics(prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10000)
    try:
        await admin.start()
        topics = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    except Exception as exc:  # cleanup only: a failure must not hide the figures
        sys.stderr.write(f"pipeline: could not delete topics {prefix}*: {exc!r}\n")
    finally:
        await admin.close()


async def topic_partitions(system: System, topic: str = "vo.leads") -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10000)
    try:
        await admin.start()
        described = await admin.describe_topics([system.topic_prefix + topic])
        return len(described[0]["partitions"]) if described else None
    except Exception:
        return None
    finally:
        await admin.close()


async def _migrate(databases: dict[str, str]) -> None:
    async def one(service: str) -> None:
        prefix = service.upper()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            service,
            "migrate",
            env={**os.environ, f"{prefix}_DATABASE_URL": databases[service]},
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{service} migrate failed:\n{output.decode()[-2000:]}")

    await asyncio.gather(*(one(service) for service in SERVICES))


@asynccontextmanager
async def running_system(
    label: str, *, replicas: int, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[System]:
    """Start the system (fresh databases, topics, processes); stop and clean everything after."""
    run = uuid.uuid4().hex[:8]
    logs = LOGS / label
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    extra = dict(extra_env or {})
    async with AsyncExitStack() as stack:
        databases = await stack.enter_async_context(_databases(run))
        await _migrate(databases)
        receiver_port = free_port()
        system = System(
            label=label,
            replicas=replicas,
            databases=databases,
            topic_prefix=f"benchpipe{run}.",
            urls={service: f"http://127.0.0.1:{free_port()}" for service in SERVICES},
            receiver_url=f"http://127.0.0.1:{receiver_port}",
        )
        stack.push_async_callback(_delete_topics, system.topic_prefix)
        stack.callback(_stop, system.processes)
        python = sys.executable
        receiver = _start(
            "receiver",
            "receiver",
            "receiver",
            [
                *(python, "-m", "benchmarks.pipeline.receiver"),
                *("--port", str(receiver_port), "--secret", WEBHOOK_SECRET),
            ],
            os.environ,
            logs,
        )
        system.processes.append(receiver)
        for service in SERVICES:
            env = _env(service, system, extra)
            system.processes.append(
                _start(f"{service} api", service, "api", [python, "-m", service, "api"], env, logs)
            )
            for replica in range(1, replicas + 1):
                port = free_port()
                worker_env = {**env, f"{service.upper()}_WORKER_METRICS_PORT": str(port)}
                system.processes.append(
                    _start(
                        f"{service} worker {replica}" if replicas > 1 else f"{service} worker",
                        service,
                        "worker",
                        [python, "-m", service, "worker"],
                        worker_env,
                        logs,
                        metrics_url=f"http://127.0.0.1:{port}/metrics",
                    )
                )
        async with httpx.AsyncClient() as client:
            # All at once, one deadline: on a loaded 2-core machine a dozen Python processes
            # importing at the same time can take minutes.
            await asyncio.gather(
                _wait_http(f"{system.receiver_url}/healthz", receiver, client, STARTUP_S),
                *(
                    _wait_http(
                        process.metrics_url
                        if process.metrics_url is not None
                        else f"{system.urls[process.service]}/readyz",
                        process,
                        client,
                        STARTUP_S,
                    )
                    for process in system.services
                ),
            )
        for service in SERVICES:
            dsn = make_url(databases[service]).set(drivername="postgresql")
            connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
            system.connections[service] = connection
            stack.push_async_callback(connection.close)
        yield system
