"""Ingest: e-mail parses per second in process, and accepted leads per second over real HTTP on
PostgreSQL + Kafka beside a bare FastAPI JSON endpoint measured in the same run.

Both HTTP servers run as uvicorn subprocesses on 127.0.0.1 (one worker each); the ingest worker
(outbox relay to Kafka) runs beside the API, so the rate includes the publishing load. The same
load generator (a minimal asyncio HTTP/1.1 client, fixed concurrency) drives both, in rounds
that alternate between them (10 s each); the figure that matters is the median of the rounds'
ratios ingest / bare (goal ≥ 30 %; median, quartiles and range of 10 rounds, each round's two
rates shown), with p50/p99 latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from ingest.sources.email.classifier import parse_email
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "tests/ingest/fixtures/email").glob("*.eml"))
TOKEN = "vo_bench-token-with-every-role"
PARSE_SECONDS = 5.0
# Rounds of 10 s, not 5: the machine's periodic work (autovacuum visits a database once a
# minute, checkpoints, Kafka's log flushes) then spreads over more rounds instead of deciding
# the one it lands in (5 s rounds of one run spread from 25 % to 48 %).
ROUND_SECONDS = float(os.environ.get("BENCH_INGEST_SECONDS", "10"))
# Enough rounds that one noisy round cannot flip the verdict (the median of 10 moves by one
# rank at most when one round is off); the spread says how much the rounds disagreed.
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "10"))
GOAL = 0.30
WARMUP_SECONDS = 2.0
CONCURRENCY = 32


class _Lead(BaseModel):
    source: str
    source_ref: str
    contact: dict[str, Any]


def create_bare_app() -> FastAPI:
    """The baseline: FastAPI parsing and validating a JSON body, answering 202 — no I/O."""
    app = FastAPI()

    @app.post("/v1/leads", status_code=202)
    async def accept(lead: _Lead) -> dict[str, str]:
        return {"id": str(uuid.uuid4()), "status": "accepted"}

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def measure_parses() -> tuple[float, int]:
    messages = [path.read_bytes() for path in CORPUS]
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < PARSE_SECONDS:
        for raw in messages:
            parse_email(raw)
        count += len(messages)
    return count / (time.perf_counter() - started), len(messages)


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    # Logs go to a file: a pipe nobody reads fills up and blocks the server mid-run.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            args, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        process.stderr = log  # read back by _wait_ready when the server dies
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.poll() is not None:
                output = b""
                if process.stderr is not None:
                    process.stderr.seek(0)
                    output = process.stderr.read()
                raise RuntimeError(f"server exited: {output.decode(errors='replace')[-2000:]}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def lead_body(index: int, run: str) -> dict[str, Any]:
    """The JSON of a posted lead, unique by ``run`` and ``index``."""
    return {
        "source": "api",
        "source_ref": f"bench-{run}-{index}",
        "contact": {
            "first_name": "Camille",
            "last_name": "Durand",
            "phone": "06 12 34 56 78",
            "email": "camille.durand@example.fr",
        },
        "vehicle": {"make": "Renault", "model": "Clio", "price_eur": 12990},
        "message": "Bonjour, la Clio est-elle toujours disponible ?",
    }


def _leads(tag: str) -> Callable[[int], dict[str, Any]]:
    return lambda index: lead_body(index, tag)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: httpx costs more CPU per request than the bare
    endpoint itself, which would make the load generator the thing measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers.split(b" ", 2)[1])
        length = 0
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Sample:
    """Accepted leads, latencies (s) and errors of one endpoint over measured rounds."""

    seconds: float = 0.0
    accepted: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else float("nan")

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[int(fraction * (len(ordered) - 1))]


async def _load(
    url: str, body: Callable[[int], dict[str, Any]], seconds: float, into: Sample | None
) -> Sample:
    """Fixed-concurrency POSTs for ``seconds``; counted into ``into`` (None: a warm-up)."""
    host, port = url.removeprefix("http://").split(":")
    sample = Sample()
    counter = 0

    async def worker(connection: _Connection) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            payload = json.dumps(body(counter)).encode()
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(connection.post_json("/v1/leads", payload), 60)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                sample.errors += 1
                await connection.close()
                continue
            if status == 202:
                sample.accepted += 1
                sample.latencies.append(time.perf_counter() - started)
            else:
                sample.errors += 1

    connections = [_Connection(host, int(port)) for _ in range(CONCURRENCY)]
    started = time.perf_counter()
    deadline = started + seconds
    try:
        await asyncio.gather(*(worker(connection) for connection in connections))
    finally:
        for connection in connections:
            await connection.close()
    sample.seconds = time.perf_counter() - started
    if into is not None:
        into.seconds += sample.seconds
        into.accepted += sample.accepted
        into.errors += sample.errors
        into.latencies.extend(sample.latencies)
    return sample


async def _outbox_backlog(url: str) -> int:
    from sqlalchemy import func, select

    from ingest.models import infra
    from shared.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(select(func.count()).select_from(infra.outbox_event))
    finally:
        await engine.dispose()
    return int(count or 0)


async def _drain_seconds(database: str, limit_s: float = 60.0) -> float:
    """Seconds until the outbox is empty (every accepted lead published to Kafka)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if not await _outbox_backlog(database):
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


@dataclass
class HttpResult:
    bare: Sample
    ingest: Sample
    round_rates: list[tuple[float, float]]  # (bare, ingest) accepted leads/s of each round
    drains: list[float]

    @property
    def round_ratios(self) -> list[float]:
        return [ingest / bare for bare, ingest in self.round_rates]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.round_ratios)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartiles of the rounds' ratios (inclusive method)."""
        if len(self.round_ratios) < 2:
            return self.median_ratio, self.median_ratio
        q1, _, q3 = statistics.quantiles(self.round_ratios, n=4, method="inclusive")
        return q1, q3

    def verdict(self) -> str:
        """Met or not by the median, and whether one noisy round could flip it: the verdict
        must hold when the round most in its favour is replaced by the worst value possible."""
        met = self.median_ratio >= GOAL
        ordered = sorted(self.round_ratios)
        worst = [*ordered[:-1], -math.inf] if met else [math.inf, *ordered[1:]]
        robust = (statistics.median(worst) >= GOAL) == met
        return ("met" if met else "not met") + ("" if robust else ", but one round decides it")


async def measure_http() -> HttpResult:
    """Both servers run side by side; rounds alternate bare then ingest, each after the outbox
    has drained, so that a noisy moment of the machine hits both sides of a round's ratio."""
    database = await create_database()
    python = sys.executable
    try:
        env = {
            "INGEST_DATABASE_URL": database,
            "INGEST_BUS": "kafka",
            "INGEST_KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "INGEST_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
            "INGEST_DEV_TOKEN": TOKEN,
            "INGEST_HTTP_PORT": str(free_port()),
        }
        await asyncio.to_thread(
            subprocess.run,
            [python, "-m", "ingest", "migrate"],
            env={**os.environ, **env},
            check=True,
        )
        ingest_url = f"http://127.0.0.1:{env['INGEST_HTTP_PORT']}"
        bare_port = free_port()
        bare_url = f"http://127.0.0.1:{bare_port}"
        bare_args = [
            python, "-m", "uvicorn", "--factory", "benchmarks.bench_ingest:create_bare_app",
            "--host", "127.0.0.1", "--port", str(bare_port), "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
        run = uuid.uuid4().hex[:8]
        result = HttpResult(Sample(), Sample(), [], [])
        with (
            _process(bare_args, {}) as bare,
            _process([python, "-m", "ingest", "api"], env) as api,
            _process([python, "-m", "ingest", "worker"], env),
        ):
            await _wait_ready(bare_url, bare)
            await _wait_ready(ingest_url, api)
            await _load(bare_url, _leads("bare"), WARMUP_SECONDS, None)
            await _load(ingest_url, _leads(f"{run}-warm"), WARMUP_SECONDS, None)
            await _drain_seconds(database)
            for round_no in range(ROUNDS):
                bare_round = await _load(bare_url, _leads("bare"), ROUND_SECONDS, result.bare)
                ingest_round = await _load(
                    ingest_url, _leads(f"{run}-{round_no}"), ROUND_SECONDS, result.ingest
                )
                result.drains.append(await _drain_seconds(database))
                result.round_rates.append((bare_round.rate, ingest_round.rate))
        return result
    finally:
        await drop_database(database)


def _row(name: str, sample: Sample) -> str:
    return (
        f"| {name} | {sample.rate:,.0f} | {sample.percentile_ms(0.5):.1f} "
        f"| {sample.percentile_ms(0.99):.1f} | {sample.errors} |"
    )


async def run() -> str:
    parses, corpus = measure_parses()
    http = await measure_http()
    rounds = ", ".join(
        f"{ingest / bare:.0%} ({ingest:,.0f} / {bare:,.0f})" for bare, ingest in http.round_rates
    )
    q1, q3 = http.quartiles
    return f"""## Ingest

E-mail parsing in process (classifier + layout parsers over the {corpus} fixture e-mails of
`tests/ingest/fixtures/email/`, {PARSE_SECONDS:.0f} s): **{parses:,.0f} e-mails/s**.

Canonical JSON leads over real HTTP (uvicorn subprocesses, one worker each, both running side
by side; 32 concurrent keep-alive connections from a minimal asyncio HTTP/1.1 client). After a
{WARMUP_SECONDS:.0f} s warm-up of each, {ROUNDS} rounds alternate {ROUND_SECONDS:.0f} s on the
bare endpoint and {ROUND_SECONDS:.0f} s on ingest, each round starting once the outbox has
drained; every lead a new `source_ref`. Ingest runs on PostgreSQL with its worker relaying the
outbox to Kafka; the bare endpoint is FastAPI validating the same body and answering 202 with
no I/O.

| endpoint | accepted leads/s | p50 ms | p99 ms | errors |
|---|---:|---:|---:|---:|
{_row("bare FastAPI JSON", http.bare)}
{_row("ingest (PostgreSQL + Kafka)", http.ingest)}

Ingest / bare, per round (ingest / bare leads/s): {rounds}.

Median **{http.median_ratio:.0%}** of {ROUNDS} rounds, interquartile range {q1:.0%} to
{q3:.0%}, min {min(http.round_ratios):.0%}, max {max(http.round_ratios):.0%};
goal ≥ {GOAL:.0%}: **{http.verdict()}**. The outbox drained to Kafka within
{max(http.drains):.1f} s of each round's end.
"""
