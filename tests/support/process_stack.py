"""The four services as real processes (``python -m <svc> api|worker``, as ``make run`` starts
them) on PostgreSQL and Kafka, so that a SIGKILL is a real one: each process's output goes to a
log file, each API and worker is waited for on its own port (the worker's ``/metrics``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.harness import DEV_TOKEN, WEBHOOK_LOOPBACK, eventually
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "qualify", "dispatch", "crm")
# Eight Python processes importing their code on a shared 2-core machine: generous on purpose.
START_TIMEOUT_S = 240.0


@dataclass
class ServiceProcess:
    service: str
    role: str  # "api" or "worker"
    env: dict[str, str]
    port: int  # the API's port, or the worker's metrics port
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.service,
                self.role,
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self.starts += 1

    async def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        path = "/readyz" if self.role == "api" else "/metrics"

        async def answers() -> bool:
            if self.process is not None and self.process.returncode is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"{self.service} {self.role} exited: {tail}")
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    return (await client.get(self.url + path)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(answers, timeout_s=timeout_s, interval_s=0.5)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            await self.kill()


@dataclass
class ProcessStack:
    """APIs and workers of the four services; ``env`` holds each service's settings."""

    folder: Path
    env: Mapping[str, Mapping[str, str]]
    processes: dict[tuple[str, str], ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for service in SERVICES:
            prefix = service.upper()
            api_port = int(self.env[service][f"{prefix}_HTTP_PORT"])
            metrics_port = free_port()
            for role, port in (("api", api_port), ("worker", metrics_port)):
                env = {
                    **os.environ,
                    **self.env[service],
                    f"{prefix}_WORKER_METRICS_PORT": str(metrics_port),
                }
                self.processes[(service, role)] = ServiceProcess(
                    service, role, env, port, self.folder / f"{service}-{role}.log"
                )

    def api(self, service: str) -> str:
        return self.processes[(service, "api")].url

    def worker(self, service: str) -> ServiceProcess:
        return self.processes[(service, "worker")]

    async def start(self) -> None:
        for process in self.processes.values():
            await process.start()
        await asyncio.gather(*(process.wait_ready() for process in self.processes.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes.values()))

    def client(self, service: str, token: str = DEV_TOKEN) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api(service),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )


_LOOPBACK = json.dumps(WEBHOOK_LOOPBACK)


def service_env(
    service: str,
    *,
    database_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    **extra: str,
) -> dict[str, str]:
    """The environment of one service's processes (its ``<SVC>_`` settings)."""
    prefix = service.upper()
    values = {
        "DATABASE_URL": database_url,
        "BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": topic_prefix,
        "TOPIC_PARTITIONS": "2",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "DEV_TOKEN": DEV_TOKEN,
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "CONSUMER_RETRY_BACKOFF_S": "0.05",
        "OUTBOX_POLL_INTERVAL_S": "0.1",
        "KAFKA_PUBLISH_TIMEOUT_S": "5",
        # The sellers' tools of these tests listen on loopback, which webhooks reach only when
        # allowed (docs/dispatch.md, "Where webhooks may go").
        **({"WEBHOOK_ALLOWED_NETWORKS": _LOOPBACK} if service == "dispatch" else {}),
        **extra,
    }
    return {f"{prefix}_{name}": value for name, value in values.items()}
