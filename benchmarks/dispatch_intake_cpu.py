"""CPU per routed lead of the dispatch worker, in process on PostgreSQL: batches of qualified
leads (in store at two sites, one in four full web, by a running count; 10 sellers per pool),
each batch handled by the leads consumer's handler in one unit of work and committed, as a
polled batch is; then the webhook sender's pass that POSTs the batch's offers (handed over at
birth) to a minimal HTTP server in this process (it answers 204 at once; its cost is counted,
and small) and records them. Batch sizes 1 (what the worker mostly sees at 20 leads/s) and 20.
The CPU time (``time.process_time``) per lead: median and best over the batches, and the
statements. ``vehicles``: each lead names a vehicle (not in stock), as the pipeline benchmark's
leads do. The unit of work's BEGIN and COMMIT are counted in the intake (in the worker they
are the consumer's, shared with its claim of the event).

    .venv/bin/python -m benchmarks.dispatch_intake_cpu [leads per size] [sizes, e.g. 1,20]
        [vehicles]

Old vs new in the same minutes: ``--baseline DIR [rounds] [leads per round] [batch size]``
(10, 200, 1), where ``DIR`` holds another ``dispatch`` package (e.g. main's
``services/dispatch``, copied: ``git -C /work/main archive main services/dispatch | tar -x -C
/tmp/base``, then ``/tmp/base/services/dispatch``). Two worker processes are started, this
tree's and one whose ``dispatch`` is the baseline's (``PYTHONPATH``; everything else is this
tree's), each on its own database, on uvloop as the worker runs; they take turns round by round
(the order alternates), one idle while the other runs, each round ``leads`` leads with vehicles
in batches of one (or the size given). Reported per version: the CPU per lead of each round
(intake + sender pass: median, range over the rounds) and the ratio of the two in each round.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import event

from dispatch.assignments.intake import qualified_handler
from dispatch.webhooks.delivery import WebhookSender, webhook_http_client
from shared.consumer import Handler
from shared.db.session import SessionFactory, session_scope
from shared.event_loop import run
from shared.events import Envelope
from shared.events.payloads import ContactV1, LeadQualifiedV1
from tests.dispatch.conftest import dispatch_settings, start_dispatch
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

_ANSWER = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
ROOT = Path(__file__).resolve().parent.parent


def _envelope(clock: Clock, index: int, *, vehicles: bool = False) -> Envelope:
    lead_id = str(uuid.uuid4())
    payload = LeadQualifiedV1(
        lead_id=lead_id,
        source="leboncoin",
        received_at=clock.now - timedelta(minutes=30),
        qualified_at=clock.now,
        operator_id="op-1",
        contact=ContactV1(full_name="Jeanne Martin", phone=f"+3361{uuid.uuid4().int % 10**7:07d}"),
        intent="buy",
        channel="in_store" if index % 4 else "full_web",
        site=("lyon", "paris")[index % 2],
        vehicle_ad_ref=f"AD-{uuid.uuid4().int % 500}" if vehicles else None,
    )
    return Envelope(
        source="/vo-leads/qualify",
        type="lead.qualified.v1",
        subject=lead_id,
        data=payload.model_dump(mode="json"),
    )


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A seller's tool that answers 204 to every request (kept alive)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@dataclass
class Figures:
    size: int
    intake_ms: list[float]
    sender_ms: list[float]
    intake_statements: int
    sender_statements: int

    def line(self) -> str:
        def cut(values: list[float]) -> str:
            return f"median {statistics.median(values):.2f} ms, best {min(values):.2f} ms"

        return (
            f"batch {self.size:>2}: intake CPU per lead {cut(self.intake_ms)}; "
            f"sender pass per lead {cut(self.sender_ms)}; statements per batch: "
            f"intake {self.intake_statements}, sender {self.sender_statements}"
        )


@dataclass
class Worker:
    """The worker's intake handler and webhook sender on a directory of three pools."""

    factory: SessionFactory
    handler: Handler
    sender: WebhookSender
    clock: Clock
    vehicles: bool
    seen: list[Any] = field(default_factory=list)
    count: int = 0  # leads so far: their channel and site take turns

    async def batch(self, size: int) -> tuple[float, float, int, int]:
        """One batch: CPU seconds of its intake and of the sender's pass, their statements."""
        envelopes = [self._next() for _ in range(size)]
        self.seen.clear()
        start = time.process_time()
        async with session_scope(self.factory) as session:
            for envelope in envelopes:
                await self.handler(session, envelope)
        intake = time.process_time() - start
        statements = len(self.seen)
        self.seen.clear()
        start = time.process_time()
        sent = await self.sender.send_due()
        sending = time.process_time() - start
        assert sent == size, (sent, size)
        return intake, sending, statements, len(self.seen)

    def _next(self) -> Envelope:
        self.count += 1
        return _envelope(self.clock, self.count, vehicles=self.vehicles)


@asynccontextmanager
async def running(*, vehicles: bool) -> AsyncIterator[Worker]:
    url = (await create_database()).replace("postgresql://", "postgresql+asyncpg://")
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = Clock()
    try:
        async with start_dispatch(dispatch_settings(url), clock) as api:
            hook = f"http://127.0.0.1:{port}/hook"
            for site in ("lyon", "paris"):
                await api.site(site)
                for index in range(10):
                    await api.seller(
                        f"{site}-{index}", site_id=site, capacity=1000, webhook_url=hook
                    )
            for index in range(10):
                await api.seller(
                    f"web-{index}", mode="full_web", site_id=None, capacity=1000, webhook_url=hook
                )
            handoff = api.handoff(capacity=1_000_000)
            handler = qualified_handler(api.runtime, handoff)
            async with webhook_http_client(api.settings) as client:
                worker = Worker(
                    api.runtime.session_factory,
                    handler,
                    api.sender(client, handoff),
                    clock,
                    vehicles,
                )
                event.listen(
                    api.runtime.engine.sync_engine,
                    "before_cursor_execute",
                    lambda *a: worker.seen.append(a),
                )
                yield worker
    finally:
        server.close()
        await drop_database(url)


async def measure(leads: int, sizes: list[int], *, vehicles: bool = False) -> list[Figures]:
    figures = []
    async with running(vehicles=vehicles) as worker:
        for size in sizes:
            result = Figures(size, [], [], 0, 0)
            for _ in range(max(leads // size, 3)):
                intake, sending, in_intake, in_sender = await worker.batch(size)
                result.intake_ms.append(intake * 1000 / size)
                result.sender_ms.append(sending * 1000 / size)
                result.intake_statements, result.sender_statements = in_intake, in_sender
            figures.append(result)
    return figures


# -- old vs new: two worker processes taking turns -------------------------------------------


async def serve(commands: TextIO, answers: TextIO) -> None:
    """A worker process of a comparison: ``ready``, then for each line ``n size`` read, ``n``
    leads with vehicles in batches of ``size``, answered with the CPU milliseconds per lead
    (intake and sender pass summed) of the batches: median and mean; an empty line ends it."""
    async with running(vehicles=True) as worker:
        for _ in range(40):  # warm up: connections, caches, the server's plans
            await worker.batch(1)
        answers.write(f"ready {Path(qualified_handler.__code__.co_filename).parent.parent}\n")
        answers.flush()
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, commands.readline)).strip():
            leads, size = (int(word) for word in line.split())
            per_lead = []
            for _ in range(max(leads // size, 1)):
                intake, sending, _, _ = await worker.batch(size)
                per_lead.append((intake + sending) * 1000 / size)
            answers.write(json.dumps([statistics.median(per_lead), sum(per_lead) / len(per_lead)]))
            answers.write("\n")
            answers.flush()


class _Process:
    def __init__(self, name: str, pythonpath: str | None) -> None:
        self.name = name
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.dispatch_intake_cpu", "--serve"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the worker's logs
            text=True,
        )
        self.medians: list[float] = []
        self.means: list[float] = []

    def ask(self, line: str) -> str:
        assert self.popen.stdin is not None
        assert self.popen.stdout is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()
        answer = self.popen.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.name} worker process ended")
        return answer.strip()

    def round(self, leads: int, size: int) -> None:
        median, mean = json.loads(self.ask(f"{leads} {size}"))
        self.medians.append(median)
        self.means.append(mean)

    def close(self) -> None:
        if self.popen.stdin is not None:
            self.popen.stdin.write("\n")
            self.popen.stdin.close()
        self.popen.wait(timeout=60)


def compare(baseline: str, rounds: int, leads: int, size: int, out: Callable[[str], Any]) -> None:
    processes = [_Process("baseline", baseline), _Process("current", None)]
    try:
        for process in processes:
            answer = process.popen.stdout.readline() if process.popen.stdout else ""
            if not answer.startswith("ready "):
                raise RuntimeError(f"the {process.name} worker process did not start")
            out(f"{process.name:>8}: dispatch from {answer.split(' ', 1)[1].strip()}\n")
        for index in range(rounds):
            for process in processes if index % 2 == 0 else reversed(processes):
                process.round(leads, size)
    finally:
        for process in processes:
            process.close()
    for process in processes:
        medians, means = process.medians, process.means
        out(
            f"{process.name:>8}: CPU per lead (intake + sender pass), median of each round's "
            f"leads {statistics.median(medians):.3f} ms (rounds {min(medians):.3f}-"
            f"{max(medians):.3f}); mean {statistics.median(means):.3f} ms (rounds "
            f"{min(means):.3f}-{max(means):.3f})\n"
        )
    base, current = processes
    ratios = [new / old for old, new in zip(base.medians, current.medians, strict=True)]
    out(
        f"current / baseline, per round (medians): {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f}; {sum(r < 1 for r in ratios)} of {rounds} "
        f"rounds lower; {rounds} rounds of {leads} leads in batches of {size})\n"
    )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--serve"]:
        run(serve(sys.stdin, sys.stdout))
        return
    if args[:1] == ["--baseline"]:
        rounds = int(args[2]) if len(args) > 2 else 10
        leads = int(args[3]) if len(args) > 3 else 200
        size = int(args[4]) if len(args) > 4 else 1
        compare(args[1], rounds, leads, size, sys.stdout.write)
        return
    leads = int(args[0]) if args else 400
    sizes = [int(size) for size in (args[1] if len(args) > 1 else "1,20").split(",")]
    vehicles = len(args) > 2 and args[2] == "vehicles"
    for figures in asyncio.run(measure(leads, sizes, vehicles=vehicles)):
        sys.stdout.write(figures.line() + "\n")


if __name__ == "__main__":
    main()
